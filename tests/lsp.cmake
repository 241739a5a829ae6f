# lsp.cmake — script-driven suites for `nib lsp`: the node client tests
# (tests/lsp, one ctest entry per file, after one setup entry that runs
# `npm ci` when node_modules is missing) and the Neovim headless test.
# Both skip (exit 77) when node / nvim are not installed.

file(GLOB NIB_LSP_NODE_TESTS CONFIGURE_DEPENDS
     ${CMAKE_SOURCE_DIR}/tests/lsp/*.test.mjs)

add_test(NAME lsp_node_setup
         COMMAND sh ${CMAKE_SOURCE_DIR}/tests/lsp/run.sh --setup)
set_tests_properties(lsp_node_setup PROPERTIES
    FIXTURES_SETUP nib_lsp_node SKIP_RETURN_CODE 77 TIMEOUT 300)

foreach(f ${NIB_LSP_NODE_TESTS})
  get_filename_component(n ${f} NAME_WE)
  add_test(NAME lsp_node_${n}
           COMMAND ${CMAKE_COMMAND} -E env NIB_BINARY=$<TARGET_FILE:nib>
                   sh ${CMAKE_SOURCE_DIR}/tests/lsp/run.sh ${f})
  set_tests_properties(lsp_node_${n} PROPERTIES
      FIXTURES_REQUIRED nib_lsp_node SKIP_RETURN_CODE 77 TIMEOUT 180)
endforeach()

add_test(NAME lsp_nvim
         COMMAND ${CMAKE_COMMAND} -E env NIB_BINARY=$<TARGET_FILE:nib>
                 sh ${CMAKE_SOURCE_DIR}/tests/nvim/run.sh)
set_tests_properties(lsp_nvim PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
