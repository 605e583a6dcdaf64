"""Learning to hash with binary deep neural networks: UH-BDNN, SH-BDNN and baselines."""

__version__ = "0.1.0"
