# Training pipeline and shipped-model tests (tests/training/*.py).
# The scripts need Debian's python3 with numpy/torch/regex for the training
# parts; without them they exit 77, which ctest reports as skipped.
find_program(NIB_TRAIN_PYTHON python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT NIB_TRAIN_PYTHON)
  find_program(NIB_TRAIN_PYTHON python3)
endif()
if(NIB_TRAIN_PYTHON)
  add_test(NAME training_tokenizer_vectors
           COMMAND ${NIB_TRAIN_PYTHON} ${CMAKE_SOURCE_DIR}/tests/training/test_tokenizer_vectors.py
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  add_test(NAME training_smoke
           COMMAND ${NIB_TRAIN_PYTHON} ${CMAKE_SOURCE_DIR}/tests/training/smoke.py $<TARGET_FILE:nib>
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(training_tokenizer_vectors training_smoke PROPERTIES
                       SKIP_RETURN_CODE 77 TIMEOUT 180)
  if(EXISTS ${CMAKE_SOURCE_DIR}/tests/training/shipped.py)
    add_test(NAME training_shipped_models
             COMMAND ${NIB_TRAIN_PYTHON} ${CMAKE_SOURCE_DIR}/tests/training/shipped.py $<TARGET_FILE:nib>
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(training_shipped_models PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
  endif()
endif()
