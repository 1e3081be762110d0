"""Runs the package's GPU check (`hifigan_ruslan.gpu_check`, nbs/11a_gpu_check.ipynb) from a source checkout.

The recipe's V1 training step runs a few steps in fp32, in fp16 with the gradient scalers and in bf16 where
the GPU computes it natively, then the `Vocoder`'s real-time factor is measured; without a GPU, a tiny
workload on the CPU. An installed package runs the same with `python -m hifigan_ruslan.gpu_check`, as the
Kaggle kernel's smoke run does.

    python benchmarks/gpu_check.py                # CUDA if there is a GPU, else the CPU workload
    python benchmarks/gpu_check.py --device cpu
    python benchmarks/gpu_check.py --wavs data/ruslan-22k/wavs   # segments of these clips (22,050 Hz)
"""
import sys
from hifigan_ruslan.gpu_check import run_check

if __name__ == "__main__":
    sys.exit(run_check())
