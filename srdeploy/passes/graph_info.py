"""Read-only facts about an exported graph that calibration and the rewrites share:
which Conv uses which weight, what consumes each tensor, where the residual Adds are."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

# Ops a quantization grid passes through unchanged: Relu (for grids that clamp at zero) and the
# pure permutation DepthToSpace.
PASS_THROUGH = ("Relu", "DepthToSpace")


@dataclass(frozen=True)
class ConvSite:
    node: str
    weight: str
    input: str
    output: str


@dataclass(frozen=True)
class ResidualSite:
    node: str
    module: str
    branch: str  # tensor from the conv branch (input 0)
    skip: str  # the identity/skip tensor (input 1)


@dataclass(frozen=True)
class GraphInfo:
    convs: dict[str, ConvSite]  # weight name -> conv
    residuals: dict[str, ResidualSite]  # ResidualAdd module path -> add
    consumers: dict[str, tuple[str, ...]]  # tensor -> consuming node names
    producers: dict[str, str]  # tensor -> producing node name
    op_types: dict[str, str]  # node name -> op type
    node_outputs: dict[str, tuple[str, ...]]
    node_inputs: dict[str, tuple[str, ...]]
    graph_outputs: frozenset[str] = frozenset()
    # 1x1 convs with constant diagonal weights (a per-channel affine, e.g. an inverse mean shift) writing a graph
    # output: weight names
    output_affines: frozenset[str] = frozenset()

    def conv_by_node(self, node: str) -> ConvSite | None:
        for c in self.convs.values():
            if c.node == node:
                return c
        return None

    def consumer_ops(self, tensor: str) -> list[tuple[str, str]]:
        return [(n, self.op_types[n]) for n in self.consumers.get(tensor, ())]

    def relu_chain_consumers(self, conv_weight: str) -> tuple[bool, list[str]]:
        """(through_relu, [weights of convs]) when the conv output reaches only convs, directly
        or through a chain of single-consumer Relu / DepthToSpace nodes; (.., []) otherwise."""
        out = self.convs[conv_weight].output
        ops = self.consumer_ops(out)
        through_relu = False
        while len(ops) == 1 and ops[0][1] in PASS_THROUGH:
            through_relu = through_relu or ops[0][1] == "Relu"
            ops = self.consumer_ops(self.node_outputs[ops[0][0]][0])
        weights = []
        for node, op in ops:
            conv = self.conv_by_node(node) if op == "Conv" else None
            if conv is None:
                return through_relu, []
            weights.append(conv.weight)
        return through_relu, weights

    def reaches_through(self, conv_weight: str, op_type: str) -> bool:
        """True when the conv output's single-consumer chain of pass-through ops contains ``op_type``."""
        ops = self.consumer_ops(self.convs[conv_weight].output)
        while len(ops) == 1 and ops[0][1] in PASS_THROUGH:
            if ops[0][1] == op_type:
                return True
            ops = self.consumer_ops(self.node_outputs[ops[0][0]][0])
        return False

    def writes_graph_output(self, conv_weight: str) -> bool:
        """True when the conv's output is the graph output, directly or through DepthToSpace nodes (the
        network's final pixel shuffle after the sub-pixel fold, models/subpixel_fold.py), and nothing else
        reads it."""
        return _reaches_output(
            self.convs[conv_weight].output, self.consumers, self.op_types, self.node_outputs, self.graph_outputs
        )

    def image_conv(self, conv_weight: str) -> str | None:
        """The conv whose output is the network image when ``conv_weight``'s conv computes it: the conv itself
        when it writes the graph output, or the per-channel affine 1x1 conv that is its only consumer."""
        if self.writes_graph_output(conv_weight):
            return conv_weight
        ops = self.consumer_ops(self.convs[conv_weight].output)
        nxt = self.conv_by_node(ops[0][0]) if len(ops) == 1 and ops[0][1] == "Conv" else None
        return nxt.weight if nxt is not None and nxt.weight in self.output_affines else None

    def output_only_relu(self, conv_weight: str) -> bool:
        ops = self.consumer_ops(self.convs[conv_weight].output)
        return len(ops) == 1 and ops[0][1] == "Relu"


def analyze(model: onnx.ModelProto, residual_modules: list[str] | None = None) -> GraphInfo:
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    consumers: dict[str, list[str]] = {}
    producers: dict[str, str] = {}
    op_types, outs, ins = {}, {}, {}
    convs: dict[str, ConvSite] = {}
    residuals: dict[str, ResidualSite] = {}
    wanted = set(residual_modules or [])
    for node in graph.node:
        op_types[node.name] = node.op_type
        outs[node.name] = tuple(node.output)
        ins[node.name] = tuple(node.input)
        for t in node.input:
            if t:
                consumers.setdefault(t, []).append(node.name)
        for t in node.output:
            producers[t] = node.name
        if node.op_type == "Conv" and len(node.input) >= 2 and node.input[1] in inits:
            convs[node.input[1]] = ConvSite(node.name, node.input[1], node.input[0], node.output[0])
        if node.op_type == "Add" and node.name.endswith(":Add"):
            module = node.name[: -len(":Add")]
            if module in wanted:
                residuals[module] = ResidualSite(node.name, module, node.input[0], node.input[1])
    outputs = frozenset(o.name for o in graph.output)
    return GraphInfo(
        output_affines=_output_affines(graph, convs, outputs, consumers, op_types, outs),
        convs=convs,
        residuals=residuals,
        consumers={k: tuple(v) for k, v in consumers.items()},
        producers=producers,
        op_types=op_types,
        node_outputs=outs,
        node_inputs=ins,
        graph_outputs=outputs,
    )


def _reaches_output(
    tensor: str,
    consumers: dict[str, tuple[str, ...]] | dict[str, list[str]],
    op_types: dict[str, str],
    node_outputs: dict[str, tuple[str, ...]],
    outputs: frozenset[str],
) -> bool:
    """``tensor`` is a graph output read by nothing, or reaches one through single-consumer DepthToSpace."""
    while True:
        users = consumers.get(tensor) or ()
        if not users:
            return tensor in outputs
        if len(users) != 1 or op_types[users[0]] != "DepthToSpace" or tensor in outputs:
            return False
        tensor = node_outputs[users[0]][0]


def _output_affines(
    graph: onnx.GraphProto,
    convs: dict[str, ConvSite],
    outputs: frozenset[str],
    consumers: dict[str, list[str]],
    op_types: dict[str, str],
    node_outputs: dict[str, tuple[str, ...]],
) -> frozenset[str]:
    inits = {i.name: i for i in graph.initializer}
    nodes = {n.name: n for n in graph.node}
    found = set()
    for weight, conv in convs.items():
        node = nodes[conv.node]
        if not _reaches_output(conv.output, consumers, op_types, node_outputs, outputs) or (
            len(node.input) > 2 and node.input[2] not in inits
        ):
            continue
        if positive_diagonal(numpy_helper.to_array(inits[weight])) is not None:
            found.add(weight)
    return frozenset(found)


def positive_diagonal(weight: np.ndarray) -> np.ndarray | None:
    """The per-channel factors a when a conv weight is a 1x1 a*I with every a > 0 (a per-channel scaling)."""
    w = np.asarray(weight, np.float64)
    if w.ndim != 4 or w.shape[2:] != (1, 1) or w.shape[0] != w.shape[1]:
        return None
    a = np.diag(w[:, :, 0, 0])
    return a if np.array_equal(w[:, :, 0, 0], np.diag(a)) and (a > 0).all() else None
