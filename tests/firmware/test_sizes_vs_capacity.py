"""Sizes of the firmware: the linked ELF against what the bundle declares and what the target has; models
too large for a target refused with their sizes; every microcontroller target links."""
import dataclasses
import re
import subprocess
import sys

import pytest

from rnnx.errors import RnnxError
from rnnx.export import read_manifest
from rnnx.firmware import build_firmware, bundle_sizes, check_fits, elf_sizes, elf_symbols, export_sizes, footprint
from rnnx.models import build_model, get_config
from rnnx.runtime.artifact import read_artifact
from rnnx.targets import get_target


def test_arena_declared_by_bundle_and_compile_is_the_arena_the_firmware_links(micro_artifact):
    artifact = micro_artifact("cortex-m4f")
    manifest = read_artifact(artifact)
    report = footprint(artifact / manifest.static.bundle, get_target("cortex-m4f"), manifest.signature, steps=4)
    assert report["arena_bytes"] == report["declared_arena_bytes"] == manifest.static.arena_bytes
    assert report["state_bytes"] <= report["arena_bytes"] and report["const_bytes"] >= report["weight_bytes"]
    assert report["ram_bytes"] <= report["capacity"]["ram"] and report["flash_bytes"] <= report["capacity"]["flash"]
    # Every weight but the embedding's is read at each step, at most 16 floats (64 B) per load instruction
    # (VLDM of 16 registers): a count below that would not be counting instructions.
    cfg = get_config("ref-micro")
    read_per_step = report["weight_bytes"] - cfg.vocab_size * cfg.d_model * 4
    assert report["instructions_per_step"]["min"] > read_per_step / 64


@pytest.mark.parametrize("target, machine", [("riscv32-imac", 0xF3), ("cortex-m7", 0x28)])
def test_bundle_links_into_firmware_for_target(micro_artifact, tmp_path, target, machine):
    bundle = micro_artifact(target) / read_artifact(micro_artifact(target)).static.bundle
    elf = build_firmware(bundle, target, tmp_path)
    header = elf.read_bytes()[:20]
    assert header[4] == 1 and int.from_bytes(header[18:20], "little") == machine  # ELF32 for RISC-V / ARM
    sizes = elf_sizes(elf, target)
    assert sizes["arena_bytes"] == bundle_sizes(bundle)["arena_bytes"]
    assert sizes["const_bytes"] == bundle_sizes(bundle)["const_bytes"]
    assert not {"malloc", "free", "_sbrk", "_malloc_r"} & set(elf_symbols(elf, target))  # no heap anywhere


def test_model_too_large_for_flash_is_refused_with_its_sizes(tiny_export):
    sizes = export_sizes(tiny_export, read_manifest(tiny_export))
    parameters = sum(p.numel() for p in build_model("ref-tiny").parameters())
    assert abs(sizes["weight_bytes"] - 4 * parameters) < 0.01 * 4 * parameters  # fp32 weights, read without data
    with pytest.raises(RnnxError) as refused:
        check_fits("cortex-m4f", sizes["weight_bytes"], sizes["state_bytes"], model=sizes["model"])
    message = str(refused.value)
    assert message == (f"ref-tiny needs {sizes['weight_bytes']:,} B of flash ({sizes['weight_bytes']:,} B of weights "
                       f"before its code); cortex-m4f has 1,048,576 B")


def test_arena_too_large_for_ram_is_refused_with_its_sizes():
    check_fits("cortex-m4f", 500_000, 240 << 10, 30_000)  # fits: 240 KB arena + 16 KB stack = 256 KB
    with pytest.raises(RnnxError, match=re.escape("ref-x needs 262,160 B of RAM (245,776 B of arena + 16,384 B of "
                                                  "stack); cortex-m4f has 262,144 B")):
        check_fits("cortex-m4f", 500_000, (240 << 10) + 16, 30_000, model="ref-x")


def test_compile_refuses_a_model_too_large_for_the_target_before_compiling(tiny_export, tmp_path):
    done = subprocess.run([sys.executable, "-m", "rnnx", "compile", str(tiny_export), "--target", "cortex-m4f",
                           "-o", str(tmp_path / "artifact")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "ref-tiny needs" in done.stderr and "cortex-m4f has 1,048,576 B" in done.stderr
    assert not (tmp_path / "artifact").exists()


def test_firmware_whose_ram_does_not_hold_the_arena_fails_to_link_naming_the_region(micro_artifact, tmp_path):
    m4 = get_target("cortex-m4f")
    target = dataclasses.replace(m4, board=dataclasses.replace(m4.board, ram=32 << 10, flash=1 << 20))
    bundle = micro_artifact("cortex-m4f") / read_artifact(micro_artifact("cortex-m4f")).static.bundle
    with pytest.raises(RnnxError, match=r"building the cortex-m4f firmware failed: .*region `RAM' overflowed by \d+ bytes"):
        build_firmware(bundle, target, tmp_path)
