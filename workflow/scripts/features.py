import json

import numpy as np
from threadpoolctl import threadpool_limits

from bdnn.features.compute import compute_feature
from bdnn.io import save_npy
from bdnn.runlog import configure_logging

configure_logging(snakemake.log[0])
with open(snakemake.input.info) as stream:
    part_names = json.load(stream)["parts"]
options = {"cnn_weights": snakemake.params.cnn_weights, "cnn_device": snakemake.params.cnn_device,
           "cnn_batch_size": snakemake.params.cnn_batch_size, "threads": snakemake.threads}
if snakemake.wildcards.feature in ("alexnet_fc7_pca800", "vgg16_fc7"):
    import torch

    torch.set_num_threads(snakemake.threads)
with threadpool_limits(limits=snakemake.threads):
    features = compute_feature(snakemake.wildcards.feature, np.load(snakemake.input.item_array),
                               np.load(snakemake.input.parts), part_names, options)
save_npy(snakemake.output.features, features)
