/* fuzz.h: the libFuzzer entry point every target in tests/fuzz/ defines. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A finding: print and abort() (libFuzzer catches SIGABRT and saves the input; g_error's trap it does not). */
#define FUZZ_FAIL(...) do { g_printerr(__VA_ARGS__); g_printerr("\n"); abort(); } while (0)
