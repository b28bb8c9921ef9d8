"""The `runner` packaging (riscv64 Linux, which PyPI has no TVM runtime for): the step as a C bundle over
one arena planned at compile time (`rnnx.static`), and `bin/rnnx-run`, a static Linux program running it."""
from pathlib import Path

from ..edge.program import RUNNER
from ..errors import RnnxError
from ..manifest import StaticInfo
from ..runtime.artifact import INITIAL_STATE, read_state_file
from ..static import BUNDLE_DIR, build_linux_runner, compile_bundle, run_runner
from . import Built, Packager, register


def build_bundle(target, export_dir, export, out, runner: str | None) -> tuple[list[str], StaticInfo]:
    """The C bundle of the export's step in `out/bundle/`: its files and the artifact's "static" entry."""
    sizes = compile_bundle(target, export_dir, export, read_state_file(out / INITIAL_STATE, export.state), out)
    files = sizes.pop("files")
    return files, StaticInfo(**sizes, bundle=BUNDLE_DIR, runner=runner)


@register
class StaticRunner(Packager):
    kind = "runner"
    runs_prefill = False  # a static step: a prompt is fed token by token

    def build(self, target, export_dir, export, out):
        files, static = build_bundle(target, export_dir, export, out, RUNNER)
        (out / RUNNER).parent.mkdir()
        build_linux_runner(out / BUNDLE_DIR, target, out / RUNNER)
        return Built([*files, RUNNER], static=static)

    def run(self, artifact, manifest, target, inputs, prefill=0):
        """`bin/rnnx-run`, one step per token or feature vector: report = steps, step_us_p50, step_us_p95,
        max_rss_kb (the emulator's own included when emulated), outputs (their size), arena_bytes."""
        return run_runner(Path(artifact) / RUNNER, inputs[0], target.program_prefix())

    def profile(self, artifact, manifest, target, **options):
        raise RnnxError(f"an artifact for {target.name} is profiled on the board: {RUNNER} there prints its step "
                        f"p50/p95 and peak memory (here, `rnnx verify --emulate` runs it under "
                        f"{target.emulator[0]})")
