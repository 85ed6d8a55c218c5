"""The local provider: one llama.cpp model, run in the engine process only.

Owns the `Llama` object. Streams events through a callback; never touches the store or UI.
What the prompt holds is engine.context_fit.fit_prompt's decision, which `measure` reports to
the context meter too; other conversations' KV caches are engine.kv_states' to keep.

Per-token cost is constant and small: the token loop is this module's own, over `Llama.eval`;
each token is picked by engine.sampler (llama.cpp's chain over the candidates that can win, not
the whole vocabulary), and its piece goes through an incremental UTF-8 decoder (engine.detok)
instead of re-detokenizing the reply. Prompt processing reuses the
KV cache of the previous turn (longest common token prefix), runs in chunks, and is
abortable mid-chunk through llama.cpp's abort callback, so Stop works during a long prompt.

Tools: a Generate's tools are rendered by the chat template (engine.template); when the template
teaches the Hermes/Qwen `<tool_call>` format, the calls the model writes are taken out of its text
(engine.tool_text) and sent as one ToolCalls event before Final("tool_calls"). With tool_choice
"required" or a tool's name, sampling is constrained by a grammar built from the tools' schemas
(engine.tool_grammar), so even a small model writes a call that parses; an answer without tools
builds no grammar at all (its per-token cost is unchanged), and "auto" stays free text.
"""

from __future__ import annotations

import ctypes
import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from jinja2.exceptions import SecurityError, TemplateError

from engine.commands import ChatMessage, Generate, LoadModel, Measure
from engine.context_fit import SUMMARY_HEADER, PromptFit, context_size, fit_prompt, refusal_message
from engine.detok import IncrementalDetokenizer, TokenPieces
from engine.errors import ModelLoadError
from engine.events import (
    Cancelled,
    Delta,
    Failed,
    Final,
    GenerationStats,
    Measured,
    ModelInfo,
    Reading,
    Started,
    StreamEvent,
    ToolCalls,
)
from engine.gguf_check import check_gguf
from engine.kv_states import ConversationStates, common_prefix
from engine.one_token import OneTokenDecoder
from engine.penalty_history import penalty_history
from engine.prompt_size import PromptSizes, Tokenize, vocab_longest_piece
from engine.sampler import TokenSampler, usable
from engine.template import too_costly_message
from engine.template_choice import choose_template
from engine.template_limits import TemplateTooCostly
from engine.template_trial import blocked_message, compile_template
from engine.threads import ThreadChooser, default_threads, physical_cores
from engine.tool_grammar import ToolGrammarError, tool_call_grammar
from engine.tool_text import HermesCalls, JsonReplyCalls, ToolText

__all__ = ["LocalModel"]

Emit = Callable[[StreamEvent], None]

# Prompt tokens per llama_decode call. The abort callback makes cancel prompt within a
# chunk, so chunks can stay large enough for efficient batched prompt processing.
_PREFILL_CHUNK = 256


class _Aborted(Exception):
    pass


def _gpu_layers(cmd: LoadModel, gpu_offload: bool) -> int:
    """Layers to offload: the person's number, else as many as the GPU's free memory holds."""
    if not gpu_offload:
        return 0  # a CPU-only llama.cpp build ignores the setting anyway; report what really happens
    if cmd.n_gpu_layers is not None:
        return cmd.n_gpu_layers
    from engine.fit import estimate_fit, gpu_memory
    from engine.gguf_info import read_gguf_info

    gpu = gpu_memory()
    if gpu is None:
        return 0
    fit = estimate_fit(
        read_gguf_info(cmd.path), n_ctx=cmd.n_ctx, available_bytes=0, gpu=gpu, gpu_offload_supported=True
    )
    return fit.gpu_layers


class LocalModel:
    """A loaded GGUF model plus its KV cache. Not thread-safe: one generation at a time."""

    def __init__(self, cmd: LoadModel) -> None:
        t0 = time.perf_counter()
        name = Path(cmd.path).name
        self._name = name
        # The file is untrusted: its header, metadata, tensor table and chat template are
        # checked before llama.cpp's native loader sees it.
        gguf = check_gguf(cmd.path)
        size = gguf.size_bytes
        try:
            choice = choose_template(
                gguf.chat_template,
                architecture=gguf.architecture,
                chosen=cmd.chat_template,
                file_name=name,
                model_name=gguf.name or "",
            )
        except ValueError as e:
            raise ModelLoadError("bad_template", str(e)) from e
        template_source = choice.source
        # Nothing else runs in this process during a load: the check renders with the memory limit.
        checked = compile_template(str(cmd.path), template_source, bos="", eos="", trial=True)
        import llama_cpp  # imported here so that only the engine process loads native code

        from engine.backends import load_backends
        from engine.flash_attn import flash_attention
        from engine.llama_templates import disable_llama_cpp_templates

        self._lib = llama_cpp
        # Before anything asks llama.cpp about devices: with Hearth's build, no backend
        # (not even the CPU) exists until it is loaded.
        backends = load_backends(llama_cpp)
        disable_llama_cpp_templates(llama_cpp)  # it would compile the file's templates unlimited
        n_threads = cmd.n_threads or default_threads()
        # Prompt processing is compute-bound and runs while the UI is idle: use every
        # physical core. Decode overlaps with the UI, so it keeps one core free (threads.py).
        n_threads_batch = cmd.n_threads or physical_cores()
        gpu_offload = bool(llama_cpp.llama_supports_gpu_offload())
        n_gpu_layers = _gpu_layers(cmd, gpu_offload)
        try:
            with flash_attention(llama_cpp, cmd.flash_attn) as flash_attn:
                self._llm = llama_cpp.Llama(
                    model_path=str(cmd.path),
                    n_ctx=cmd.n_ctx,
                    n_batch=cmd.n_batch,
                    n_threads=n_threads,
                    n_threads_batch=n_threads_batch,
                    n_gpu_layers=n_gpu_layers,
                    flash_attn=flash_attn,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as e:
            raise ModelLoadError("load_failed", f"llama.cpp could not load {name}: {e}") from e
        llm = self._llm
        meta = llm.metadata
        bos = llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "replace")
        eos = llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "replace")
        self._bos_text = bos
        # In a turn, a reader thread may render (Measure) while the main thread decodes: a GPU driver
        # that maps pinned host memory meanwhile would fail under the render's memory limit and
        # abort llama.cpp. With layers on a GPU, renders keep their time and size limits only.
        self.template = checked.with_tokens(
            bos_token=bos, eos_token=eos, limit_memory=not (gpu_offload and n_gpu_layers > 0)
        )
        self._path = str(cmd.path)
        self._vocab = llm._model.vocab
        self._n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self._logits_at = 0  # where the logits view below points (_logits_view)
        # llama_get_logits_ith answering a plain address: llama-cpp-python's binding answers a
        # ctypes pointer object, and reading its address makes two more objects, every token.
        # A function object of its own (indexing the library makes a new one), so that
        # llama-cpp-python's binding keeps its types. `_lib` is private to llama-cpp-python, whose
        # version build.toml pins: if it moves, every model load fails, in every model test.
        self._logits_ith = llama_cpp.llama_cpp._lib["llama_get_logits_ith"]
        self._logits_ith.argtypes, self._logits_ith.restype = [ctypes.c_void_p, ctypes.c_int32], ctypes.c_void_p
        self._logits: np.ndarray[Any, np.dtype[np.float32]] = np.empty(0, dtype=np.float32)
        self._longest: int | None = None  # bytes of the longest token, found when a long prompt needs it
        self._cancel: threading.Event | None = None  # the running generation's cancel flag
        self._conversations = ConversationStates(llm, llama_cpp)  # whose KV cache the context holds
        self._one = OneTokenDecoder(llm)  # the answer's tokens, one decode each (the prompt: Llama.eval)
        self._pieces = TokenPieces(llm.detokenize)
        # Keep a reference: ctypes callbacks are freed when the Python object is.
        # Threads follow the machine's load per generation unless the person fixed a count.
        self._chooser = ThreadChooser(physical_cores()) if cmd.n_threads is None else None
        self._threads = (n_threads, n_threads_batch)  # what the context uses now
        self._abort_cb = llama_cpp.ggml_abort_callback(lambda _data: self._cancel is not None and self._cancel.is_set())
        self.info = ModelInfo(
            path=str(cmd.path),
            name=meta.get("general.name") or Path(cmd.path).stem,
            architecture=meta.get("general.architecture", "unknown"),
            n_ctx=llm.n_ctx(),
            n_ctx_train=int(llm._model.n_ctx_train()),
            n_params=int(llama_cpp.llama_model_n_params(llm._model.model)),
            size_bytes=size,
            n_threads=n_threads,
            n_threads_batch=n_threads_batch,
            load_ms=(time.perf_counter() - t0) * 1000,
            n_gpu_layers=n_gpu_layers,
            gpu_offload=gpu_offload,
            flash_attn=cmd.flash_attn,
            cpu_backend=backends.cpu_module or "",
            chat_template=choice.name,
            template_note=choice.note,
        )

    def close(self) -> None:
        self._one.close()
        self._llm.close()

    # -- generation ---------------------------------------------------------------------

    def tokenize_prompt(self, cmd: Generate, tokenize: Tokenize | None = None) -> list[int]:
        """The prompt's tokens: the template's text may hold control tokens, contents never.

        Message contents and the answer being continued are tokenized without parsing special
        tokens (engine.template.ChatTemplate.render_parts), as llama.cpp's server does.
        `tokenize`: a fit's remembering tokenizer (PromptSizes.tokenize).
        """
        tokenize = tokenize or self._tokenize
        parts = self.template.render_parts(cmd.messages, () if cmd.tool_choice == "none" else cmd.tools)
        if cmd.continue_text:
            parts.append((cmd.continue_text, True))
        starts_with_bos = bool(self._bos_text) and bool(parts) and parts[0][0].startswith(self._bos_text)
        add_bos = bool(self._llm._model.add_bos_token()) and not starts_with_bos
        tokens: list[int] = []
        for i, (text, is_content) in enumerate(parts):
            tokens += tokenize(text, add_bos and i == 0, not is_content)
        if add_bos and not parts:
            tokens += tokenize("", True, True)
        return tokens

    def _tokenize(self, text: str, add_bos: bool, special: bool) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def _longest_piece(self) -> int:
        """The most bytes of text one token covers (engine.prompt_size.vocab_longest_piece), read once."""
        if self._longest is None:
            self._longest = vocab_longest_piece(self._lib, self._vocab, self._n_vocab)
        return self._longest

    def _sizes(self, cmd: Generate, n_ctx: int) -> PromptSizes:
        """One fit's token counts of `cmd`'s prompt, for any of its messages kept."""

        def render(kept: tuple[ChatMessage, ...], tokenize: Tokenize) -> list[int]:
            return self.tokenize_prompt(dataclasses.replace(cmd, messages=kept), tokenize)

        return PromptSizes(self._tokenize, self._longest_piece, n_ctx, cmd.continue_text, render=render)

    def _template_failed(self, gid: int, e: Exception) -> Failed:
        """Why the chat template could not build the prompt."""
        if isinstance(e, TemplateTooCostly):
            return Failed(gid, "bad_template", too_costly_message(self._path, e))
        if isinstance(e, SecurityError):
            return Failed(gid, "template_error", blocked_message(self._name, e))
        if isinstance(e, TemplateError):  # e.g. the template's raise_exception on roles out of order
            return Failed(gid, "template_error", f"The chat template in {self._name} could not build the prompt: {e}")
        # A TypeError, a tokenizer failure: anything untrusted code can raise.
        return Failed(gid, "template_error", f"Could not build the prompt for {self._name}: {e}")

    def generate(self, cmd: Generate, cancel: threading.Event, emit: Emit, received_at: float) -> None:
        """Run one generation to its end, emitting exactly one terminal event."""
        gid = cmd.generation_id
        llm = self._llm
        prepared = self._prepare(cmd, emit)
        if prepared is None:
            return
        tokens, fit, constrained = prepared
        max_tokens = min(cmd.sampling.max_tokens, fit.n_ctx - len(tokens) - 1)

        t_prefill = time.perf_counter()
        self._retune(start=True)
        self._conversations.switch_to(cmd.cache_key, tokens)
        try:
            cached = self._prefill(tokens, cancel, lambda done: emit(Reading(gid, done, len(tokens))))
        except _Aborted:
            emit(Cancelled(gid, "user", self._stats(len(tokens), 0, 0, t_prefill, received_at, None, None)))
            return
        if not self._logits_finite():
            emit(Failed(gid, "bad_model", self._bad_numbers()))
            return
        emit(Started(gid, len(tokens), cached, fit.omitted))
        prefill_done = time.perf_counter()

        s = cmd.sampling
        llm.set_seed(s.seed)
        detok = IncrementalDetokenizer()
        calls = self._tool_text(cmd)
        n = 0
        held_tokens = 0  # tokens whose text is still inside the UTF-8 decoder
        t_first: float | None = None
        t_last: float | None = None
        cpu_first = cpu_last = 0.0
        in_decode = decoded_by_last = 0.0  # seconds inside llama.cpp's decode: all, and by the last token
        stop_reason = "length"
        sampler = TokenSampler(
            llm,
            top_k=s.top_k,
            top_p=s.top_p,
            min_p=s.min_p,
            temp=s.temperature,
            repeat_penalty=s.repeat_penalty,
            history=penalty_history(llm, cmd.continue_text, s.repeat_penalty),
            **constrained,
        )
        logits = self._logits_view()  # a view of llama.cpp's buffer: no copy per token
        try:
            while True:
                if cancel.is_set():
                    stop_reason = "cancelled"
                    break
                picked = sampler.sample(logits)
                if picked is None:  # sampling garbage (NaN, infinity): stop, say why
                    stop_reason = "bad_numbers"
                    break
                tok = picked
                if not s.ignore_eos and self._lib.llama_vocab_is_eog(self._vocab, tok):
                    stop_reason = "eog"
                    break
                n += 1
                held_tokens += 1
                text = detok.feed(self._pieces(tok))
                self._retune()
                now = time.perf_counter()
                cpu_last = time.thread_time()
                if t_first is None:
                    t_first, cpu_first = now, cpu_last
                t_last, decoded_by_last = now, in_decode
                if text:
                    emit(Delta(gid, calls.feed(text) if calls else text, held_tokens))
                    held_tokens = 0
                if n >= max_tokens:
                    break
                t_eval = time.perf_counter()
                self._one.decode(tok)
                in_decode += time.perf_counter() - t_eval
                logits = self._logits_view()
        finally:
            sampler.close()
        tail = detok.flush()
        if calls:
            tail = calls.feed(tail) + calls.finish()
        if tail or held_tokens:
            emit(Delta(gid, tail, held_tokens))
        if calls:
            stop_reason = self._send_calls(gid, calls, stop_reason, emit)
        stats = self._stats(len(tokens), cached, n, t_prefill, received_at, t_first, t_last, prefill_done)
        stats = dataclasses.replace(stats, threads=self._threads[0])
        if n > 1:
            assert t_first is not None and t_last is not None
            stats = dataclasses.replace(
                stats,
                decode_cpu_ms_per_token=(cpu_last - cpu_first) * 1000 / (n - 1),
                # The window first..last token holds n - 1 decodes; the rest of it is the engine's own.
                host_ms_per_token=max(0.0, (t_last - t_first) - decoded_by_last) * 1000 / (n - 1),
            )
        emit(self._terminal(gid, stop_reason, stats))

    def _tool_text(self, cmd: Generate) -> ToolText | None:
        """What takes the calls out of the reply's text, when the model was offered tools in a format Hearth reads."""
        style = self.template.tool_format
        if not cmd.tools or cmd.tool_choice == "none" or style is None:
            return None
        calls: ToolText = JsonReplyCalls(style) if style in ("llama3", "mistral") else HermesCalls()
        if cmd.continue_text:
            calls.feed(cmd.continue_text)  # the reply so far, already shown: only where a call stands counts
        return calls

    def _prepare(self, cmd: Generate, emit: Emit) -> tuple[list[int], PromptFit, dict[str, Any]] | None:
        """The prompt's tokens, its fit (`_fit`) and the sampler's grammar argument (none on a reply
        left free: not even an empty grammar on that path); None after emitting why not."""
        fitted = self._fit(cmd, emit)
        if fitted is None:
            return None
        try:
            grammar = self._grammar(cmd)
        except ToolGrammarError as e:
            emit(Failed(cmd.generation_id, "tools_unsupported", str(e)))
            return None
        if grammar is None:
            return (*fitted, {})
        from llama_cpp.llama_grammar import LlamaGrammar

        return (*fitted, {"grammar": LlamaGrammar.from_string(grammar, verbose=False)})

    def _grammar(self, cmd: Generate) -> str | None:
        """The grammar the reply must follow (engine.tool_grammar), checked by llama.cpp's parser; None:
        free text (no tools, "auto" or "none", a template without the <tool_call> format, or an answer
        being continued, which the grammar would make start over)."""
        if self._tool_text(cmd) is None or cmd.continue_text:
            return None
        grammar = tool_call_grammar(cmd.tools, cmd.tool_choice, style=self.template.tool_format or "hermes")
        if grammar is None:
            return None
        # llama-cpp-python adds the grammar's sampler unchecked: one llama.cpp cannot parse would be NULL.
        sampler = self._lib.llama_sampler_init_grammar(self._vocab, grammar.encode("utf-8"), b"root")
        if not sampler:
            names = ", ".join(t.name for t in cmd.tools if cmd.tool_choice in ("required", t.name))
            raise ToolGrammarError(
                "tools_unsupported",
                f"llama.cpp could not read the grammar made from the parameters of {names}: "
                'let the model choose (tool_choice "auto"), or simplify their schemas.',
            )
        self._lib.llama_sampler_free(sampler)
        return grammar

    @staticmethod
    def _send_calls(gid: int, calls: ToolText, stop_reason: str, emit: Emit) -> str:
        """The calls the reply made, before its Final; returns the Final's stop reason."""
        if not calls.calls or stop_reason not in ("eog", "length"):
            return stop_reason  # none, or the reply was stopped: a stopped reply asks for nothing
        # With "length" the last call may be cut off: it is sent, but not to be run.
        emit(ToolCalls(gid, tuple(calls.calls)))
        return "tool_calls" if stop_reason == "eog" else stop_reason

    def _fit(self, cmd: Generate, emit: Emit) -> tuple[list[int], PromptFit] | None:
        """The prompt's tokens and how they were fitted (engine.context_fit.fit_prompt, which the
        meter's `measure` reports); None after emitting why the turn cannot be answered."""
        gid = cmd.generation_id
        model_ctx = self._llm.n_ctx()
        sizes = self._sizes(cmd, context_size(model_ctx, cmd.sampling))
        try:
            sizes.count(cmd.messages)  # the whole prompt, rendered when its bytes say it may fit
        except Exception as e:  # noqa: BLE001 - the template is untrusted code
            emit(self._template_failed(gid, e))
            return None
        try:
            fit = fit_prompt(cmd.messages, sizes.count, model_ctx, cmd.sampling, cmd.summary)
            if fit.refused:
                emit(Failed(gid, "context_full", refusal_message(fit, cmd.messages, sizes.count, model_ctx)))
                return None
            return sizes.tokens(fit.messages), fit
        except TemplateTooCostly as e:
            emit(Failed(gid, "bad_template", too_costly_message(self._path, e)))
            return None
        except Exception as e:  # noqa: BLE001 - the template is untrusted code (see _template_failed)
            emit(Failed(gid, "template_error", f"Could not build a shorter prompt for {self._name}: {e}"))
            return None

    def measure(self, cmd: Measure) -> Measured:
        """How much of the context `cmd`'s prompt takes, and what its policy would leave out: the
        fit `generate` would send (engine.context_fit.fit_prompt)."""
        model_ctx = self._llm.n_ctx()
        # The Generate it stands for: its tools take room in the prompt as they will in the answer's.
        as_sent = Generate(0, cmd.messages, cmd.sampling, tools=cmd.tools, tool_choice=cmd.tool_choice)
        sizes = self._sizes(as_sent, context_size(model_ctx, cmd.sampling))
        fit = fit_prompt(cmd.messages, sizes.count, model_ctx, cmd.sampling, cmd.summary)
        system = tuple(m for m in cmd.messages if m.role == "system")
        system_tokens = sizes.count(system)[0] if system else 0
        summary_tokens = 0
        if fit.omitted and fit.messages and SUMMARY_HEADER in fit.messages[0].content:
            # The summary goes into the chat's leading system prompt, or alone in front of the kept
            # turns: what it adds is counted against that prompt only (a system message further on,
            # left out or not, is not where it went), and it is never 0 once sent.
            first = cmd.messages[0] if cmd.messages and cmd.messages[0].role == "system" else None
            base = sizes.count((first,))[0] if first is not None else 0
            summary_tokens = max(1, sizes.count(fit.messages[:1])[0] - base)
        omitted = len(fit.omitted) if fit.fits else -1
        return Measured(
            cmd.request_id,
            fit.whole,
            fit.n_ctx,
            system_tokens,
            omitted,
            left_out=fit.omitted,
            summary_tokens=summary_tokens,
        )

    def _terminal(self, gid: int, stop_reason: str, stats: GenerationStats) -> Final | Cancelled | Failed:
        if stop_reason == "cancelled":
            return Cancelled(gid, "user", stats)
        if stop_reason == "bad_numbers":
            return Failed(gid, "bad_model", self._bad_numbers())
        return Final(gid, stop_reason, stats)

    def _logits_view(self) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The last evaluated position's logits, as NumPy over llama.cpp's own buffer (no copy);
        NaNs when llama.cpp has none (then nothing is sampled: the answer fails, saying why). The
        view is made again only when llama.cpp moved its buffer, not once per token."""
        at = self._logits_ith(self._llm._ctx.ctx, -1)
        if not at:
            return np.full(self._n_vocab, np.nan, dtype=np.float32)
        if at != self._logits_at:
            ptr = ctypes.cast(at, ctypes.POINTER(ctypes.c_float))
            self._logits_at, self._logits = at, np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))
        return self._logits

    def _logits_finite(self) -> bool:
        """The last evaluated position's logits hold no NaN or infinity.

        A damaged tensor (random bytes in the weights, header intact) poisons every logit, and
        sampling from NaN picks an arbitrary token, often end-of-turn at once: an empty answer
        that looks completed. This check after the prompt, and the sampler's own before each pick
        (engine.sampler), catch it.
        """
        return usable(self._logits_view())

    def _bad_numbers(self) -> str:
        return (
            f"{self._name} produced invalid numbers (NaN or infinity) instead of an answer: the file is "
            "probably damaged. Download it again (or verify it in the model manager) or choose another model."
        )

    def _retune(self, *, start: bool = False) -> None:
        """Threads for what the machine is doing now: at a generation's start (for the prompt too,
        whose workers a busy neighbour stalls as well), then every quarter second while it
        decodes. Takes effect from the next decode call (llama.cpp reads it per graph)."""
        if self._chooser is None:
            return
        n = self._chooser.choose() if start else self._chooser.tick(time.monotonic())
        if n and (n, n) != self._threads:
            self._lib.llama_set_n_threads(self._llm._ctx.ctx, n, n)
            self._threads = (n, n)

    def _prefill(self, tokens: list[int], cancel: threading.Event, progress: Callable[[int], None]) -> int:
        """Evaluate the prompt, reusing the longest cached prefix; return the reused count."""
        llm = self._llm
        # Sampling needs fresh logits from the prompt's last token, so always evaluate it.
        cached = min(common_prefix(llm._input_ids.tolist(), tokens), len(tokens) - 1)
        llm.n_tokens = cached
        ctx = llm._ctx.ctx
        self._cancel = cancel
        self._lib.llama_set_abort_callback(ctx, self._abort_cb, None)
        try:
            for i in range(cached, len(tokens), _PREFILL_CHUNK):
                if cancel.is_set():
                    raise _Aborted
                try:
                    llm.eval(tokens[i : i + _PREFILL_CHUNK])
                except RuntimeError:
                    if cancel.is_set():
                        raise _Aborted from None
                    raise
                if len(tokens) - cached > _PREFILL_CHUNK:  # a long read: say how far it is
                    progress(min(i + _PREFILL_CHUNK, len(tokens)))
        finally:
            # The callback costs a Python call per graph node: keep it off during decode.
            self._lib.llama_set_abort_callback(ctx, self._lib.ggml_abort_callback(0), None)
            self._cancel = None
        return cached

    @staticmethod
    def _stats(
        prompt: int,
        cached: int,
        n: int,
        t_prefill: float,
        received_at: float,
        t_first: float | None,
        t_last: float | None,
        prefill_done: float | None = None,
    ) -> GenerationStats:
        now = time.perf_counter()
        decode_tps = (
            (n - 1) / (t_last - t_first) if n > 1 and t_first is not None and t_last and t_last > t_first else 0.0
        )
        return GenerationStats(
            prompt_tokens=prompt,
            cached_tokens=cached,
            completion_tokens=n,
            prefill_ms=((prefill_done or now) - t_prefill) * 1000,
            ttft_ms=((t_first - received_at) * 1000) if t_first is not None else 0.0,
            decode_tokens_per_s=decode_tps,
            total_ms=(now - received_at) * 1000,
        )
