// distributed/poll.h: waiting for a collective with a deadline, by polling.
//
// A blocking MPI_Allreduce (or cudaStreamSynchronize after an NCCL call) waits forever
// when another rank never joins. So the collectives are started non-blocking and this
// loop asks "done yet?" until the answer is yes or the deadline passes. Polling is also
// what makes MPI progress: Open MPI advances a non-blocking collective inside MPI_Test.
#pragma once
#include <chrono>
#include <thread>

namespace td::dist {

// Calls done() until it returns true (then returns true) or `timeout_s` seconds have
// passed (then returns false). For the first 0.1 s it asks as fast as it can, yielding
// the core between asks (a collective between busy ranks completes in micro- to
// milliseconds, and a rank sharing a core with another under `mpirun --oversubscribe`
// must let it run); after that it naps 1 ms between asks, so that a rank waiting long
// for a slower one does not burn a core the slower one may need.
template <typename Done>
bool poll_until(Done&& done, double timeout_s) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    for (;;) {
        if (done()) return true;
        double waited = std::chrono::duration<double>(clock::now() - start).count();
        if (waited > timeout_s) return false;
        if (waited < 0.1)
            std::this_thread::yield();
        else
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

}  // namespace td::dist
