"""The released depth model `animate` reads: Depth Anything V2 Small (Apache-2.0) in transformers' format."""

DEPTH_REPO = "depth-anything/Depth-Anything-V2-Small-hf"
DEPTH_DIR = "Depth-Anything-V2-Small-hf"  # its folder inside a weights folder (`animate download --set depth`)
DEPTH_FILES = ("config.json", "model.safetensors")
INPUT_SIDE = 518  # the short side its frames are resized to (its training resolution)
DEFAULT_DEPTH_MODEL = f"pretrained_weights/{DEPTH_DIR}"  # where `animate download --set depth` puts it by default
