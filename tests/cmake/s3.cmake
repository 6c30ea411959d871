# s3-storage tests. unit.test_stor_s3 (from the unit-test glob) re-runs itself under
# tests/services/s3rver.sh, which starts a private s3rver (scripts/deps.d/s3rver.sh installs
# it) on a free loopback port with a temporary bucket; e2e.test_s3 starts its own the same way.
set_tests_properties(unit.test_stor_s3 PROPERTIES TIMEOUT 900 LABELS "s3")
if(TEST e2e.test_s3)
  set_tests_properties(e2e.test_s3 PROPERTIES TIMEOUT 600 LABELS "s3")
endif()
