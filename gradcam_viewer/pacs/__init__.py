"""Sending results to a PACS node (opt-in): node settings, C-ECHO and C-STORE with pynetdicom,
and an outbox that keeps every object until the node has accepted it. Nothing here touches the
network unless a node is configured and the user asks for it."""

from gradcam_viewer.pacs.network import EchoResult, SendReport, echo, send_files
from gradcam_viewer.pacs.nodes import (
                                       NodeError,
                                       PacsNode,
                                       load_nodes,
                                       nodes_file,
                                       parse_node,
                                       save_nodes,
)
from gradcam_viewer.pacs.outbox import Outbox, default_outbox

__all__ = ["EchoResult", "NodeError", "Outbox", "PacsNode", "SendReport", "default_outbox",
           "echo", "load_nodes", "nodes_file", "parse_node", "save_nodes", "send_files"]
