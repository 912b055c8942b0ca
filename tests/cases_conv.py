"""tests/cases_conv.py: PyTorch fixture cases for the convolution family of tensor/nn_ops.h
(conv2d, conv_transpose2d, avg_pool2d, upsample_nearest2d).
Run by tests/make_fixtures.py; the C++ twins are in tests/test_conv_torch.cpp (family "conv").

Names say what each case exercises; shapes stay small (a few hundred elements) so the
fixtures stay small and the finite-difference gradcheck on the C++ side stays quick."""
from fixturelib import *  # Case, F, randn, nograd, ...

CASES = [
    # conv2d: x (N, C, H, W), w (K, C / groups, R, S), b (K)
    Case("conv2d_1x1", [randn(2, 3, 4, 4), randn(5, 3, 1, 1), randn(5)],
         lambda x, w, b: F.conv2d(x, w, b)),
    Case("conv2d_3x3_pad1", [randn(1, 2, 5, 5), randn(3, 2, 3, 3), randn(3)],
         lambda x, w, b: F.conv2d(x, w, b, padding=1)),
    Case("conv2d_stride2", [randn(1, 2, 7, 7), randn(2, 2, 3, 3), randn(2)],
         lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1)),
    Case("conv2d_stride2_even", [randn(2, 2, 6, 6), randn(3, 2, 3, 3), randn(3)],  # 6 + 2 - 3 odd: last row dropped
         lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1)),
    Case("conv2d_groups2", [randn(1, 4, 5, 5), randn(6, 2, 3, 3), randn(6)],
         lambda x, w, b: F.conv2d(x, w, b, padding=1, groups=2)),
    Case("conv2d_depthwise", [randn(1, 3, 4, 4), randn(3, 1, 3, 3), randn(3)],
         lambda x, w, b: F.conv2d(x, w, b, padding=1, groups=3)),
    Case("conv2d_no_bias", [randn(1, 2, 4, 4), randn(3, 2, 3, 3)],
         lambda x, w: F.conv2d(x, w)),
    Case("conv2d_batch3", [randn(3, 2, 4, 4), randn(2, 2, 3, 3), randn(2)],
         lambda x, w, b: F.conv2d(x, w, b, padding=1)),
    Case("conv2d_nonsquare", [randn(2, 2, 5, 7), randn(3, 2, 3, 2), randn(3)],  # H != W and R != S
         lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1)),
    Case("conv2d_pad2", [randn(1, 1, 3, 4), randn(2, 1, 3, 3), randn(2)],  # more padding than needed
         lambda x, w, b: F.conv2d(x, w, b, padding=2)),
    Case("conv2d_1x1_stride2", [randn(1, 3, 5, 5), randn(2, 3, 1, 1), randn(2)],  # 1x1 that still needs im2col
         lambda x, w, b: F.conv2d(x, w, b, stride=2)),
    Case("conv2d_noncontig", [randn(2, 2, 5, 4), randn(3, 2, 3, 3), randn(3)],  # a transposed view of x
         lambda x, w, b: F.conv2d(x.transpose(2, 3), w, b, padding=1)),
    Case("conv2d_const_weight", [randn(2, 2, 4, 4), nograd(randn(3, 2, 3, 3)), nograd(randn(3))],
         lambda x, w, b: F.conv2d(x, w, b, padding=1)),
    Case("conv2d_const_input", [nograd(randn(2, 2, 4, 4)), randn(3, 2, 3, 3), randn(3)],
         lambda x, w, b: F.conv2d(x, w, b, padding=1)),

    # conv_transpose2d: x (N, C_in, H, W), w (C_in, C_out / groups, R, S), b (C_out)
    Case("conv_transpose2d_stride2_outpad1", [randn(1, 3, 3, 3), randn(3, 2, 3, 3), randn(2)],
         lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)),
    Case("conv_transpose2d_pad1", [randn(2, 2, 4, 4), randn(2, 3, 3, 3), randn(3)],
         lambda x, w, b: F.conv_transpose2d(x, w, b, padding=1)),
    Case("conv_transpose2d_groups2", [randn(1, 4, 3, 3), randn(4, 2, 2, 2), randn(4)],
         lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, groups=2)),
    Case("conv_transpose2d_k4s2p1", [randn(2, 2, 3, 3), randn(2, 2, 4, 4)],  # a UNet's 2x upsampling, no bias
         lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1)),
    Case("conv_transpose2d_nonsquare", [randn(1, 2, 2, 3), randn(2, 3, 3, 2), randn(3)],
         lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=0, output_padding=1)),
    Case("conv_transpose2d_const_weight", [randn(1, 2, 3, 3), nograd(randn(2, 2, 3, 3)), nograd(randn(2))],
         lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1)),

    # avg_pool2d (kernel = stride = k) and upsample_nearest2d (scale s)
    Case("avg_pool2d_k2", [randn(2, 3, 4, 4)], lambda x: F.avg_pool2d(x, 2)),
    Case("avg_pool2d_k3_nonsquare", [randn(1, 2, 6, 3)], lambda x: F.avg_pool2d(x, 3)),
    Case("avg_pool2d_noncontig", [randn(2, 2, 4, 6)], lambda x: F.avg_pool2d(x.transpose(2, 3), 2)),
    Case("upsample_nearest2d_s2", [randn(2, 2, 3, 3)], lambda x: F.interpolate(x, scale_factor=2, mode="nearest")),
    Case("upsample_nearest2d_s3", [randn(1, 2, 2, 3)], lambda x: F.interpolate(x, scale_factor=3, mode="nearest")),

    # composites: a downsampling block and an upsampling block of a small UNet
    Case("conv_silu_avgpool", [randn(2, 3, 6, 6), randn(4, 3, 3, 3), randn(4)],
         lambda x, w, b: F.avg_pool2d(F.silu(F.conv2d(x, w, b, padding=1)), 2)),
    Case("upsample_conv", [randn(1, 3, 3, 3), randn(2, 3, 3, 3), randn(2)],
         lambda x, w, b: F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), w, b, padding=1)),
    Case("conv_convtranspose_roundtrip", [randn(1, 2, 4, 4), randn(3, 2, 3, 3), randn(3, 2, 3, 3)],
         lambda x, w1, w2: F.conv_transpose2d(F.conv2d(x, w1, stride=2, padding=1), w2, stride=2, padding=1,
                                              output_padding=1)),
]
