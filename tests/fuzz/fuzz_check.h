// FUZZ_CHECK: the assertion of fuzz targets. Unlike assert() it stays on in release builds, and it
// prints what failed before aborting, so libFuzzer (and the corpus replay under CTest) reports the
// input that broke the property.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)
