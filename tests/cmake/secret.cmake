# Secret Agent tests: the `secret-agent` test program (tests/secret_agent/, the real agent is
# not installable here) for the end-to-end tests, and its server linked into the unit test
# test_secret so the client is exercised in-process over TCP, TLS and Unix sockets.
set(ABS_SA_DIR ${CMAKE_CURRENT_SOURCE_DIR}/secret_agent)
add_executable(secret-agent ${ABS_SA_DIR}/main.c ${ABS_SA_DIR}/sa_server.c)
target_link_libraries(secret-agent PRIVATE PkgConfig::JANSSON OpenSSL::SSL OpenSSL::Crypto)
set_target_properties(secret-agent PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/secret_agent)

if(TARGET test_secret)
  target_sources(test_secret PRIVATE ${ABS_SA_DIR}/sa_server.c)
  target_include_directories(test_secret PRIVATE ${ABS_SA_DIR})
endif()
