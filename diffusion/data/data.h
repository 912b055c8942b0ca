// diffusion/data/data.h: everything about data in one include.
//   dataset.h       Dataset, load_dataset("mnist" | "fashion" | "cifar10" | DIR, split)
//   idx.h           MNIST / Fashion-MNIST IDX files, plain or .gz
//   cifar.h         CIFAR-10 binary batches
//   image_folder.h  png / jpg folders via stb_image, resize + center crop
//   batches.h       BatchIterator: seeded shuffling, flips, save / restore position
//   pixels.h        x = pixel / 127.5 - 1
#pragma once
#include "diffusion/data/batches.h"
#include "diffusion/data/cifar.h"
#include "diffusion/data/dataset.h"
#include "diffusion/data/idx.h"
#include "diffusion/data/image_folder.h"
#include "diffusion/data/pixels.h"
