"""Syringe and needle catalogs: contract ids present, bad entries named."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.procedure.catalog import CatalogError, load_needles, load_syringes


def test_contract_syringes_exist_with_their_diameters() -> None:
    syringes = load_syringes()
    expected = {
        "bd-luerlok-1ml": 4.78,
        "bd-luerlok-3ml": 8.66,
        "bd-luerlok-5ml": 12.06,
        "bd-luerlok-10ml": 14.50,
    }
    for sid, diameter in expected.items():
        assert syringes[sid].inner_diameter_mm == diameter
        assert syringes[sid].luer_lock
    assert {"bd-luerlok-20ml", "terumo-1ml", "terumo-3ml", "terumo-5ml", "terumo-10ml"} <= set(
        syringes
    )


def test_contract_needles_exist() -> None:
    needles = load_needles()
    assert {"22g-coaxial-150mm", "22g-90mm", "18g-coaxial-150mm"} <= set(needles)
    assert needles["22g-90mm"].inner_diameter_mm == pytest.approx(0.413)


def test_bad_entry_names_file_entry_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "syringes.toml"
    bad.write_text(
        '[[syringe]]\nid = "x-1ml"\nmanufacturer = "X"\nmodel = "m"\n'
        "nominal_volume_ml = 1\ninner_diameter_mm = 80\nluer_lock = true\n"
    )
    with pytest.raises(CatalogError) as info:
        load_syringes(bad)
    message = str(info.value)
    assert str(bad) in message and "'x-1ml'" in message and "inner_diameter_mm" in message


def test_duplicate_ids_and_broken_toml(tmp_path: Path) -> None:
    entry = '[[needle]]\nid = "n"\ngauge = 22\nlength_mm = 90\ninner_diameter_mm = 0.4\n'
    dup = tmp_path / "needles.toml"
    dup.write_text(entry + entry)
    with pytest.raises(CatalogError, match="appears twice"):
        load_needles(dup)
    broken = tmp_path / "broken.toml"
    broken.write_text("[[needle]\n")
    with pytest.raises(CatalogError, match=str(broken)):
        load_needles(broken)
