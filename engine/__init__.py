"""Generation: the engine process, its typed commands and events, and the local provider.

Never imports `app` or `store`. Public face below; native code (llama_cpp) is imported only
inside the engine process.
"""

from engine.commands import Cancel, ChatMessage, Generate, LoadModel, Sampling, Shutdown
from engine.errors import EngineError, EngineUnavailable, ModelLoadError
from engine.events import (
    Cancelled,
    Delta,
    Failed,
    Final,
    GenerationStats,
    ModelFailed,
    ModelInfo,
    ModelLoading,
    ModelReady,
    Started,
)
from engine.states import GenerationState, IllegalTransition, check_transition

__all__ = [
    "Cancel",
    "Cancelled",
    "ChatMessage",
    "Delta",
    "EngineError",
    "EngineUnavailable",
    "Failed",
    "Final",
    "Generate",
    "GenerationState",
    "GenerationStats",
    "IllegalTransition",
    "LoadModel",
    "ModelFailed",
    "ModelInfo",
    "ModelLoadError",
    "ModelLoading",
    "ModelReady",
    "Sampling",
    "Shutdown",
    "Started",
    "check_transition",
]
