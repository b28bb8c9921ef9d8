"""The `c-bundle` packaging (microcontrollers): the step as a C bundle with no heap, OS or TVM runtime
(`rnnx.static`), and an example firmware around it (`rnnx.firmware`), refused with the numbers when it does
not fit the target's flash or RAM."""
from pathlib import Path

from .. import firmware
from . import Built, Packager, register
from .runner import build_bundle

FIRMWARE_DIR = "firmware"


@register
class CBundle(Packager):
    kind = "c-bundle"
    runs_prefill = False

    def check(self, target, export_dir, export):
        super().check(target, export_dir, export)
        sizes = firmware.export_sizes(export_dir, export)  # refuse what cannot fit before the slow part
        firmware.check_fits(target, sizes["weight_bytes"], sizes["state_bytes"], model=sizes["model"])

    def build(self, target, export_dir, export, out):
        files, static = build_bundle(target, export_dir, export, out, runner=None)
        firmware.check_fits(target, static.const_bytes, static.arena_bytes, static.kernel_code_bytes,
                            model=export.model.source)
        (out / FIRMWARE_DIR).mkdir()
        files += [f"{FIRMWARE_DIR}/{f}" for f in firmware.write_example(target, out / FIRMWARE_DIR)]
        return Built(files, static=static)

    def run(self, artifact, manifest, target, inputs, prefill=0):
        """The example firmware on the target's emulated board (qemu-system-arm, semihosting): report =
        target, board, steps, instructions per step and how they were counted, the ELF's sizes."""
        target.require_emulator()
        return firmware.run_bundle(Path(artifact) / manifest.static.bundle, target, inputs[0])

    def profile(self, artifact, manifest, target, **options):
        """The firmware's footprint and instructions per step (`rnnx.firmware.footprint`)."""
        return firmware.footprint(Path(artifact) / manifest.static.bundle, target, manifest.signature)
