"""The reference CONV-RELU-POOL-FC network and the CNN concepts a course teaches.

Importable on its own: nothing here imports cnnsetup. Importing the package imports nothing else;
import the submodule you need:

- `config`, `shapes`, `smoke` (configuration only): pure arithmetic, no torch, fast to import;
- `model`, `data`, `train`, `conv`, `pooling`, `fc`: need torch.
"""
