/* cpp_impl.c - the C11 implementation that tests/cpp_api.cpp links against. */
#define BATCH_IMPLEMENTATION
#include "../batch.h"
