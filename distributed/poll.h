// distributed/poll.h: waiting for a collective with a deadline, by polling.
//
// A blocking MPI_Allreduce (or cudaStreamSynchronize after an NCCL call) waits forever
// when another rank never joins. So the collectives are started non-blocking and this
// loop asks "done yet?" until the answer is yes or the deadline passes. Polling is also
// what makes MPI progress: Open MPI advances a non-blocking collective inside MPI_Test.
#pragma once
#include <algorithm>
#include <chrono>
#include <thread>

namespace td::dist {

// Calls done() until it returns true (then returns true) or `timeout_s` seconds have
// passed (then returns false).
//
// How it waits is a matter of speed. When the ranks arrive together, a collective through
// shared memory completes in tens to hundreds of microseconds: for the first spin_s
// seconds (0.5 ms) the loop asks as fast as it can, yielding the core between asks (a rank
// sharing a core with another under `mpirun --oversubscribe` must let it run). A rank
// still waiting after that is waiting for a slower rank, typically for milliseconds; it then naps between asks, 50
// microseconds at first and twice as long each time, up to 1 ms. A waiting rank that kept
// spinning would not be idle to the operating system: on a machine whose cores are shared
// (other programs, more ranks than cores) the CPU time it burns is taken from the rank it
// is waiting for. The price of the naps: the collective may end up to 1 ms after it could.
// (NCCL's wait, which waits for the GPU's queued work too, spins longer: distributed/nccl.cpp.)
template <typename Done>
bool poll_until(Done&& done, double timeout_s, double spin_s = 0.5e-3) {
    using clock = std::chrono::steady_clock;
    constexpr auto kLongestNap = std::chrono::microseconds(1000);
    auto nap = std::chrono::microseconds(50);
    const auto start = clock::now();
    for (;;) {
        if (done()) return true;
        double waited = std::chrono::duration<double>(clock::now() - start).count();
        if (waited > timeout_s) return false;
        if (waited < spin_s) {
            std::this_thread::yield();
        } else {
            std::this_thread::sleep_for(nap);
            nap = std::min(2 * nap, kLongestNap);
        }
    }
}

}  // namespace td::dist
