"""`cnnsetup explain`, behind the command: each part computes plain data with `reference_net`
(never torch) and renders it for a person or as JSON.

- `layer`: one CONV or POOL layer worked through (`--input --kernel ...`);
- `network`: the reference network, and a student's own network written as text (`--net`);
- `demo`: the CS231n convolution demo with every number shown (`--demo`);
- `wording`: the translated messages for a layer or a network that cannot work.
"""
