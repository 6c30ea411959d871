# Azure Blob Storage backend against Azurite: the same unit binary as unit.test_stor_azure
# (which skips the emulator tests when run alone), run under tests/services/azurite.sh, which
# starts a private in-memory Azurite on a free loopback port and exports AZURITE_*; then once
# more with Azurite on HTTPS accepting Azure AD bearer tokens (--oauth).
add_test(NAME azure.test_stor_azure
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/services/azurite.sh $<TARGET_FILE:test_stor_azure>)
add_test(NAME azure.test_stor_azure_oauth
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/services/azurite.sh --oauth
                 $<TARGET_FILE:test_stor_azure>)
set_tests_properties(azure.test_stor_azure azure.test_stor_azure_oauth PROPERTIES TIMEOUT 300)
