// distributed/no_mpi.cpp: the MPI half of distributed/communicator.h for a build without
// MPI (the Makefile found no mpicc, or MPI=0), in place of distributed/mpi.cpp. A run that
// is not distributed (local_communicator(), in communicator.cpp) works the same; asking
// for a distributed one says how to get MPI.
#include "distributed/communicator.h"
#include "tensor/error.h"

namespace td::dist {

bool mpi_built() { return false; }

std::unique_ptr<Communicator> init_distributed(const Options&) {
    fail(
        "distributed training needs MPI, and this build has none: run `bash scripts/install-deps.sh --mpi` "
        "(Debian's Open MPI), then `make clean && make`, and start the ranks with mpirun "
        "(docs/distributed.md)");
}

}  // namespace td::dist
