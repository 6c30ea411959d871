# Fuzz targets (tests/fuzz/): every target's seed corpus, including the regress-* inputs of
# crashes found and fixed, is replayed as a plain CTest test by the normal build. With
# -DABS_FUZZ=ON and CMAKE_C_COMPILER=clang the libFuzzer binaries fuzz_<target> are built too
# (abs_core instrumented for coverage, ASan+UBSan); scripts/test.d/50-fuzz.sh drives them.
option(ABS_FUZZ "Build the libFuzzer targets (needs clang)" OFF)

set(ABS_FUZZ_TARGETS as_msg as_info as_admin asb config)
set(ABS_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)

if(ABS_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "ABS_FUZZ=ON needs clang (-DCMAKE_C_COMPILER=clang)")
  endif()
  # -Wno-error: the project's -Werror gate is gcc's; clang's extra warnings must not stop fuzzing.
  target_compile_options(abs_core PRIVATE -fsanitize=fuzzer-no-link,address,undefined
                         -fno-omit-frame-pointer -Wno-error)
  target_link_options(abs_core INTERFACE -fsanitize=address,undefined)
endif()

foreach(t ${ABS_FUZZ_TARGETS})
  add_executable(fuzz_replay_${t} ${ABS_FUZZ_DIR}/fuzz_${t}.c ${ABS_FUZZ_DIR}/replay_main.c)
  target_link_libraries(fuzz_replay_${t} PRIVATE abs_core)
  add_test(NAME fuzz_replay.${t} COMMAND fuzz_replay_${t} ${ABS_FUZZ_DIR}/corpus/${t})
  if(ABS_FUZZ)
    add_executable(fuzz_${t} ${ABS_FUZZ_DIR}/fuzz_${t}.c)
    target_compile_options(fuzz_${t} PRIVATE -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz_${t} PRIVATE abs_core)
  endif()
endforeach()
