"""Limits on rendering an untrusted chat template: time, size and memory.

A chat template is a Jinja program shipped inside the model file. Jinja's sandbox keeps it
away from Python's internals, but not from looping for ever or allocating gigabytes
(`{{ 'A' * 10000000000 }}` took 19 GB, nested `range(100000)` loops never ended). Here:

- time: compiling has a deadline, each render one, and a turn a budget over all of its
  renders (fitting a long chat renders it many times), in CPU time of the thread that runs
  it, so that a busy machine slows a template down without getting it refused. The deadline is checked on every
  loop iteration of the template's code and of Jinja's own (a `sys.monitoring` JUMP event
  on their code objects, so that even an empty nested loop stops), and on every call and
  operator the template uses;
- size: `*`, `+`, `**` and `%` refuse a result past the render's cap before building it;
  `~`, calls and filters refuse one after it, so that a value doubled in a loop stops
  there; the output stops at the cap. The cap is a few million characters plus twice the
  messages' text, so a long chat is never refused for its length;
- memory (Linux): while a render runs, the process's RLIMIT_DATA is lowered to what it
  uses now plus a headroom, so that what the checks above miss (one C call such as
  `'x'.center(10**10)`) fails with MemoryError instead of growing the engine. It is scoped
  to the render, not set on the engine process for good: the model's weights are mapped
  from the file, llama.cpp's buffers grow with the context, and GPU drivers reserve
  address space by the gigabyte, none of which a fixed limit can foresee. Callers turn it
  off where another thread may need memory meanwhile (a GPU backend; see engine.local).

Owns: the limited sandbox environment, compiling and rendering under the limits, and
TemplateTooCostly. Must not: know about model files or the engine's events (engine.local
names the file in the message a person sees).
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from types import CodeType, FunctionType, ModuleType
from typing import Any, cast

import jinja2.compiler
import jinja2.filters
import jinja2.idtracking
import jinja2.lexer
import jinja2.nodes
import jinja2.parser
import jinja2.runtime
import jinja2.utils
import jinja2.visitor
from jinja2 import Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import EngineError

if sys.platform != "win32":
    import resource

__all__ = [
    "COMPILE_SECONDS",
    "RENDER_SECONDS",
    "TURN_SECONDS",
    "LimitedSandbox",
    "TemplateTooCostly",
    "compile_limited",
    "render_budget",
    "render_limited",
]

COMPILE_SECONDS = 1.5  # the largest real templates (about 20 KB) compile in a fraction of that
RENDER_SECONDS = 1.0  # one render
TURN_SECONDS = 1.5  # all the renders of one turn, or of one load check
_OUTPUT_FLOOR = 4_000_000  # characters a render may write (or a value hold) beyond twice the messages' text
_MEMORY_FLOOR = 256 << 20  # bytes a render may allocate, beyond 8 per character of its cap
_MAX_SOURCE = 64 * 1024  # characters of template source; the largest real ones are about 20,000
_MAX_INT_BITS = 4096  # integers from * and **: far past any count a template needs
# A printf width or precision, or a `*` taking one from the arguments.
_PRINTF_SIZE = re.compile(r"%[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?")


class TemplateTooCostly(EngineError):
    """The template went past a limit; the message says which, to follow "The chat template in X …"
    (engine.template.too_costly_message makes the whole sentence, naming the file). Code: bad_template."""


class _State(threading.local):
    """The running render's limits, per thread (renders run in the engine's main and reader threads)."""

    deadline = math.inf  # the thread's CPU time (time.thread_time) the running compile or render must end by
    limit_s = RENDER_SECONDS  # the time it was given, for the message
    doing = "render"  # or "compile", for the message
    ticks = 0  # checks since the clock was last read
    rendering = False
    cap = _OUTPUT_FLOOR  # characters the output, or any one value, may hold
    budget: float | None = None  # seconds of rendering left to this turn; None outside a turn


_state = _State()


def _check_time() -> None:
    state = _state
    state.ticks += 1
    if state.ticks & 63:  # reading a thread's CPU clock is a system call (3 µs in some VMs): every 64th check
        return
    if time.thread_time() > state.deadline:
        if _state.budget is not None and _state.limit_s < RENDER_SECONDS:
            raise TemplateTooCostly("bad_template", f"took longer than {TURN_SECONDS:g} s to render this turn's prompt")
        raise TemplateTooCostly("bad_template", f"took longer than {_state.limit_s:g} s to {_state.doing}")


def _checked_size(value: Any) -> Any:
    if isinstance(value, (str, list, tuple)) and len(value) > _state.cap:
        raise TemplateTooCostly(
            "bad_template", f"built a value of {len(value):,} characters or items (the limit is {_state.cap:,})"
        )
    return value


def _too_big(size: int) -> TemplateTooCostly:
    return TemplateTooCostly(
        "bad_template", f"asked for a value of {size:,} characters or items (the limit is {_state.cap:,})"
    )


def _check_binop(op: str, left: Any, right: Any) -> None:
    """Refuse a result past the limits before it is built: building it is the damage."""
    sized = (str, list, tuple)
    if op == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, sized) and isinstance(n, int) and len(seq) * n > _state.cap:
                raise _too_big(len(seq) * n)
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > _MAX_INT_BITS:
            raise TemplateTooCostly("bad_template", f"multiplied numbers past {_MAX_INT_BITS} bits")
    elif op == "+":
        if isinstance(left, sized) and isinstance(right, sized) and len(left) + len(right) > _state.cap:
            raise _too_big(len(left) + len(right))
    elif op == "**":
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and right * (abs(left).bit_length() - 1) > _MAX_INT_BITS
        ):
            raise TemplateTooCostly("bad_template", f"raised a number to a power past {_MAX_INT_BITS} bits")
    elif op == "%" and isinstance(left, str):
        args = right if isinstance(right, tuple) else (right,)
        for spec in _PRINTF_SIZE.finditer(left):
            for size in spec.groups():
                wanted = [a for a in args if isinstance(a, int)] if size == "*" else [int(size)] if size else []
                if any(n > _state.cap for n in wanted):
                    raise _too_big(max(wanted))


class _CheckedConcat(CodeGenerator):
    """`a ~ b` goes through the environment, so that a string doubled in a loop stops at the cap."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat(")
        super().visit_Concat(node, frame)
        self.write(")")


class _NotRendering(Exception):
    """A filter asked to run outside a render: Jinja folding constants while it compiles."""


def _checked_filter(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)  # keeps Jinja's pass_context/pass_environment marks
    def checked(*args: Any, **kwargs: Any) -> Any:
        if not _state.rendering:
            # Jinja's code generator runs filters whose arguments are constants while it compiles
            # (`'x'|center(10000000000)`), outside any limit, and writes the result into the code.
            # Refused, the filter runs when the template renders, within the limits.
            raise _NotRendering
        _check_time()
        return _checked_size(fn(*args, **kwargs))

    return checked


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with the size and time checks above.

    Constant folding is off, and filters refuse to run while it compiles: Jinja would run
    filters with constant arguments (`'x'|center(10000000000)`) outside any render's limits.
    """

    intercepted_binops = frozenset({"*", "+", "**", "%"})
    code_generator_class = _CheckedConcat

    def __init__(self, **options: Any) -> None:
        super().__init__(optimized=False, **options)
        self.filters = {name: _checked_filter(fn) for name, fn in self.filters.items()}

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_time()
        _check_binop(operator, left, right)
        return _checked_size(super().call_binop(context, operator, left, right))

    # Jinja's parameter names: a template's keyword arguments cannot collide with them.
    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_time()
        return _checked_size(super().call(__context, __obj, *args, **kwargs))

    def checked_concat(self, value: str) -> str:
        _check_time()
        checked: str = _checked_size(value)
        return checked


# -- the deadline, on every loop iteration ------------------------------------------------------

_tool_lock = threading.Lock()
_tool: int | None = None  # the sys.monitoring tool id Hearth holds; -1 when none was free


def _on_jump(code: CodeType, offset: int, destination: int) -> None:
    _check_time()


def _watch(code: CodeType, tool: int) -> None:
    sys.monitoring.set_local_events(tool, code, sys.monitoring.events.JUMP)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _watch(const, tool)


def _functions(module: ModuleType) -> Iterator[FunctionType]:
    for obj in vars(module).values():
        if isinstance(obj, FunctionType) and obj.__module__ == module.__name__:
            yield obj
        elif isinstance(obj, type) and obj.__module__ == module.__name__:
            yield from (f for f in vars(obj).values() if isinstance(f, FunctionType))


def _monitoring_tool() -> int | None:
    """The tool id whose JUMP events check the deadline, taken once per process.

    Jinja's filters and helpers are watched too (`lipsum(10**9)`, `x|slice(10**9)|list`
    loop there, not in the template), and its compiler. Outside a compile or render the
    check is one comparison with infinity. Ids 0-2 and 5 are the debugger's, coverage's,
    profilers' and optimizers'; with none free, the deadline is still checked on calls,
    operators and output.
    """
    global _tool
    with _tool_lock:
        if _tool is None:
            _tool = -1
            for tool in (4, 3):
                try:
                    sys.monitoring.use_tool_id(tool, "hearth-template-deadline")
                except ValueError:
                    continue
                sys.monitoring.register_callback(tool, sys.monitoring.events.JUMP, _on_jump)
                for module in (
                    jinja2.filters,
                    jinja2.runtime,
                    jinja2.utils,
                    jinja2.lexer,
                    jinja2.parser,
                    jinja2.compiler,
                    jinja2.nodes,
                    jinja2.visitor,
                    jinja2.idtracking,
                ):
                    for fn in _functions(module):
                        _watch(fn.__code__, tool)
                _tool = tool
                break
    return _tool if _tool >= 0 else None


# -- memory, while a render runs ----------------------------------------------------------------

_rlimit_lock = threading.Lock()


def _data_bytes() -> int | None:
    """The process's private writable memory (what RLIMIT_DATA counts), from /proc."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@contextlib.contextmanager
def _memory_limit(headroom: int | None) -> Iterator[None]:
    """RLIMIT_DATA at what the process uses now plus `headroom`, restored after.

    Linux only: it counts mmap'd memory there (since 4.7); macOS ignores it for mmap, and
    Windows has none. Renders with a limit take turns, so that one's restore cannot lift
    another's limit.
    """
    if headroom is None or sys.platform != "linux":
        yield
        return
    with _rlimit_lock:
        used = _data_bytes()
        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        want = None if used is None else used + headroom
        if want is not None and hard != resource.RLIM_INFINITY:
            want = min(want, hard)
        if want is None or (soft != resource.RLIM_INFINITY and soft <= want):
            yield  # unknown usage, or already tighter than this
            return
        resource.setrlimit(resource.RLIMIT_DATA, (want, hard))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


# -- compiling and rendering --------------------------------------------------------------------


def compile_limited(env: LimitedSandbox, source: str) -> Template:
    """Compile `source` (a TemplateError if it is not Jinja) with its loops watched."""
    if len(source) > _MAX_SOURCE:
        raise TemplateTooCostly(
            "bad_template", f"is {len(source):,} characters long (Hearth reads up to {_MAX_SOURCE:,})"
        )
    tool = _monitoring_tool()
    _state.deadline, _state.limit_s, _state.doing = time.thread_time() + COMPILE_SECONDS, COMPILE_SECONDS, "compile"
    try:
        template = env.from_string(source)
    finally:
        _state.deadline, _state.doing = math.inf, "render"
    if tool is not None:
        _watch(template.root_render_func.__code__, tool)
        for block in template.blocks.values():
            _watch(block.__code__, tool)
    return template


@contextlib.contextmanager
def render_budget(seconds: float = TURN_SECONDS) -> Iterator[None]:
    """The renders inside share `seconds` of rendering (the time between them is not counted)."""
    if _state.budget is not None:  # inside a turn already: its budget holds
        yield
        return
    _state.budget = seconds
    try:
        yield
    finally:
        _state.budget = None


def render_limited(template: Template, context: Mapping[str, Any], *, content_chars: int, limit_memory: bool) -> str:
    """Render `template` within the limits; TemplateTooCostly past one of them.

    `content_chars` is the length of the messages' text, which the output cap allows twice
    over; `limit_memory` is False where another thread may need memory meanwhile.
    """
    seconds = RENDER_SECONDS if _state.budget is None else min(RENDER_SECONDS, _state.budget)
    if seconds <= 0:
        raise TemplateTooCostly("bad_template", f"took longer than {TURN_SECONDS:g} s to render this turn's prompt")
    cap = _OUTPUT_FLOOR + 2 * content_chars
    headroom = _MEMORY_FLOOR + 8 * cap  # four bytes a character at worst, output and joined copy
    out_of_memory = False
    with _memory_limit(headroom if limit_memory else None):
        start = time.thread_time()
        _state.deadline, _state.limit_s, _state.cap, _state.rendering = start + seconds, seconds, cap, True
        try:
            return _collect(template, context, cap)
        except MemoryError:
            out_of_memory = True  # raised below, outside this handler: its traceback holds the big values
        finally:
            _state.deadline, _state.cap, _state.rendering = math.inf, _OUTPUT_FLOOR, False
            if _state.budget is not None:
                _state.budget -= time.thread_time() - start
    assert out_of_memory
    raise TemplateTooCostly("bad_template", f"needed more than {headroom >> 20:,} MB of memory to render")


def _collect(template: Template, context: Mapping[str, Any], cap: int) -> str:
    out: list[str] = []
    size = 0
    chunks = cast(Generator[str, None, None], template.generate(**context))  # a generator function
    try:
        for chunk in chunks:
            size += len(chunk)
            if size > cap:
                raise TemplateTooCostly("bad_template", f"wrote more than {cap:,} characters")
            out.append(chunk)
            if not len(out) & 1023:  # the template's loops check the time; this is for when none can
                _check_time()
    finally:
        chunks.close()
    return "".join(out)
