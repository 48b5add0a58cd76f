"""The reference CONV-RELU-POOL-FC network and the CNN concepts a course teaches.

Importable on its own: nothing here imports cnnsetup.
"""
