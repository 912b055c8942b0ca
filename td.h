// td.h: everything a program built on tinydiffusion's core needs, in one include.
#pragma once
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "tensor/error.h"
#include "tensor/npy.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tensor/tensor.h"
#include "tensor/nn_ops.h"
#include "version.h"
