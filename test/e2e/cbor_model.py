"""Writes a copy of botocore's GameLift model that lists only the Smithy RPC v2 CBOR protocol, so that
boto3 and the aws CLI (run with AWS_DATA_PATH=DIR) speak CBOR to the endpoint: the model they ship lists
smithy-rpc-v2-cbor first, yet for GameLift they send AWS JSON 1.1. Usage: cbor_model.py DIR"""
import gzip
import json
import os
import sys

import botocore

src = os.path.join(os.path.dirname(botocore.__file__), "data", "gamelift", "2015-10-01")
path = os.path.join(src, "service-2.json.gz")
if os.path.exists(path):
    with gzip.open(path, "rt") as f:
        model = json.load(f)
else:
    with open(os.path.join(src, "service-2.json")) as f:
        model = json.load(f)
model["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
model["metadata"]["protocol"] = "smithy-rpc-v2-cbor"
out = os.path.join(sys.argv[1], "gamelift", "2015-10-01")
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "service-2.json"), "w") as f:
    json.dump(model, f)
