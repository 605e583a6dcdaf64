"""Learning to hash with binary deep neural networks: UH-BDNN and the ITQ baseline."""

__version__ = "0.1.0"
