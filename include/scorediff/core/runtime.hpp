// Process-wide settings fixed once at start-up: intra-op threads and the compute device.
#pragma once
#include <c10/core/Device.h>

#include <string>

namespace scorediff {

// Keeps freed tensor memory (blocks up to 1 GB) in the heap for reuse instead of returning it to the
// kernel: glibc's defaults mmap/munmap every block over 128 KB-32 MB, so each [10 000, 128] activation
// costs page faults (measured: sampling 72 -> 111 evaluations/s, system time 4.7 s -> 0.2 s; a
// 512-image U-Net batch 22 -> 5.6 ms per image). Call once at start.
void configure_allocator();

// The kernel set OpenBLAS chose ("cooperlake", "skylakex", "haswell", ...; "" without OpenBLAS), for
// benchmark reports. OPENBLAS_CORETYPE overrides OpenBLAS' own detection.
std::string blas_core_name();

// What a model spends its time in, which decides where the threads go.
//   Dense: matrix products (MLPs): the threads go to OpenBLAS, ATen's OpenMP pool stays at one.
//   Convolution: oneDNN convolutions (U-Net, classifier), parallel through OpenMP: the threads go
//   there and OpenBLAS keeps one (U-Net forward, 2 threads: 1.8 ms per image with OpenMP at 2, 3.5
//   with OpenBLAS at 2 and OpenMP at 1, 3.4 on one thread).
enum class Workload { Dense, Convolution };

// threads >= 1. Small models are fastest on one thread (FACTS: oversubscription on 2 cores halves speed).
void set_threads(int threads, Workload workload = Workload::Dense);

// Whether this CPU has bfloat16 arithmetic instructions (AVX-512 BF16 or AMX-BF16, from /proc/cpuinfo).
// Without them oneDNN emulates bfloat16 convolutions, slower than float32 ones.
bool cpu_has_bfloat16_arithmetic();

// "cpu", "cuda", "cuda:1"; fails with one line if CUDA is asked for but absent.
c10::Device parse_device(const std::string& name);

}  // namespace scorediff
