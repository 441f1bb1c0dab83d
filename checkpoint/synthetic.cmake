# Synthetic workload engine and the dirty-page scanner (included by
# checkpoint/CMakeLists.txt).
add_library(ftd_checkpoint_engines
  ${CMAKE_CURRENT_LIST_DIR}/page_scanner.cc
  ${CMAKE_CURRENT_LIST_DIR}/synthetic_engine.cc
)
target_link_libraries(ftd_checkpoint_engines PUBLIC ftd_common Threads::Threads)
