"""Test helpers shipped with the package: local stand-ins for external services (see :mod:`.genai_stub`)."""

from adpipeline.testing.gemini_stub import GeminiStub
from adpipeline.testing.openai_stub import OpenAIStub

__all__ = ["GeminiStub", "OpenAIStub"]
