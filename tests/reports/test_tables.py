import csv
import io
import json

import pytest
from rich.console import Console

from psykedelic_cli.reports.aggregate import Stat
from psykedelic_cli.reports.tables import (
    Cell,
    Table,
    latex_escape,
    mark_best,
    to_csv,
    to_json,
    to_latex,
    to_markdown,
    to_rich,
)


def table(**overrides) -> Table:
    rows = [("cifar10", "ResNet20"), ("cifar10", "ResNet56"), ("cifar100", "ResNet20")]
    columns = [("min_eig", "default", "target"), ("min_eig", "default", "pruned"), ("weight", "default", "target")]
    stats = {
        (row, column): Stat(0.1 * (i + 1), 0.01, 3)
        for i, (row, column) in enumerate((r, c) for r in rows for c in columns)
    }
    stats[(rows[2], columns[2])] = None
    values = dict(
        title="Ratios",
        keys={"threshold": 1e-4},
        row_fields=("dataset", "model"),
        column_fields=("criterion", "init_mode", "measure"),
        rows=rows,
        columns=columns,
        cells=mark_best(stats, rows, columns, along="column"),
        notes=("A note.",),
        labels={"dataset": "Dataset", "model": "Model"},
        best_means="the best of each column",
    )
    return Table(**{**values, **overrides})


def test_constant_header_levels_move_into_the_caption():
    levels, constant = table().header_levels()
    assert levels == [0, 2] and constant == ["init_mode: default"]
    assert table().caption() == (
        "A note. Bold marks the best of each column. init_mode: default. "
        "mean ± population std (ddof=0, as the original); values in %; n = 3 runs per cell."
    )


def test_best_marks_the_column_maximum():
    best = {key for key, cell in table().cells.items() if cell.best}
    assert best == {
        (("cifar100", "ResNet20"), ("min_eig", "default", "target")),
        (("cifar100", "ResNet20"), ("min_eig", "default", "pruned")),
        (("cifar10", "ResNet56"), ("weight", "default", "target")),  # the cifar100 cell is empty
    }


def test_latex_booktabs_with_grouped_headers_and_bold_best():
    latex = to_latex([table()])
    assert r"\begin{tabular}{llrrr}" in latex
    assert r" &  & \multicolumn{2}{c}{min\_eig} & weight \\" in latex
    assert r"\cmidrule(lr){3-4} \cmidrule(lr){5-5}" in latex
    assert r"Dataset & Model & target & pruned & target \\" in latex
    assert r"cifar10 & ResNet20 & $10.00 \pm 1.00$ & $20.00 \pm 1.00$ & $30.00 \pm 1.00$ \\" in latex
    assert r" & ResNet56 & $40.00 \pm 1.00$ & $50.00 \pm 1.00$ & $\mathbf{60.00 \pm 1.00}$ \\" in latex
    assert r"\midrule" + "\ncifar100 & ResNet20 & $\\mathbf{70.00" in latex
    assert r"& -- \\" in latex  # the empty cell
    assert r"\caption{Ratios. A note. Bold marks the best of each column. init\_mode: default. mean $\pm$" in latex


def test_markdown_and_rich_show_the_same_cells():
    markdown = to_markdown([table()])
    assert "| Dataset | Model | min_eig / target | min_eig / pruned | weight / target |" in markdown
    assert "|  | ResNet56 | 40.00 ± 1.00 | 50.00 ± 1.00 | **60.00 ± 1.00** |" in markdown
    assert "| cifar100 | ResNet20 | **70.00 ± 1.00** | **80.00 ± 1.00** | – |" in markdown
    assert "*A note. Bold marks the best of each column. init_mode" in markdown
    console = Console(record=True, width=200)
    console.print(*to_rich(table()))
    text = " ".join(console.export_text().split())
    assert "Ratios" in text and "40.00 ± 1.00" in text and "n = 3 runs per cell" in text
    assert "*60.00 ± 1.00" in text and "* marks the best of each column." in text and "Bold" not in text


def test_rich_splits_a_wide_table_into_column_chunks_that_fit():
    uneven = table(
        cells={**table().cells, (("cifar10", "ResNet20"), ("min_eig", "default", "target")): Cell(Stat(0.5, 0.0, 1))}
    )
    # row labels take 2 × (8 + 3), a column with a best "*70.00 ± 1.00 [3]" 17 + 3, and the left edge 1
    chunks = to_rich(uneven, width=63)
    assert [t.title for t in chunks] == ["Ratios (columns 1–2 of 3)", "Ratios (column 3 of 3)"]
    console = Console(record=True, width=63)
    console.print(*chunks)
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 63
    assert [t.title for t in to_rich(uneven, width=62)][0] == "Ratios (column 1 of 3)"
    assert "50.00 ± 0.00 [1]" in text and "[n] = runs per cell" in text  # brackets are not taken for markup


def test_records_keep_raw_values_and_skip_empty_cells():
    fields = ("threshold", "dataset", "model", "criterion", "init_mode", "measure")
    rows = list(csv.DictReader(io.StringIO(to_csv([table()], fields))))
    assert len(rows) == 8
    assert rows[0] == {"threshold": "0.0001", "dataset": "cifar10", "model": "ResNet20", "criterion": "min_eig",
                       "init_mode": "default", "measure": "target", "mean": "0.1", "std": "0.01", "n": "3",
                       "best": "False"}
    document = json.loads(to_json("demo", [table()], fields))
    assert document["report"] == "demo" and "population std" in document["statistic"]
    assert document["records"][5] == {**dict(zip(fields, (1e-4, "cifar10", "ResNet56", "weight", "default", "target"))),
                                      "mean": pytest.approx(0.6), "std": 0.01, "n": 3, "best": True}


def test_counts_are_shown_per_cell_only_when_they_differ():
    uneven = table(
        cells={**table().cells, (("cifar10", "ResNet20"), ("min_eig", "default", "target")): Cell(Stat(0.5, 0.0, 1))}
    )
    texts = uneven.cell_texts()
    assert texts[(("cifar10", "ResNet20"), ("min_eig", "default", "target"))] == "50.00 ± 0.00 [1]"
    assert texts[(("cifar100", "ResNet20"), ("weight", "default", "target"))] == "–"
    assert table().cell_texts()[(("cifar10", "ResNet20"), ("min_eig", "default", "target"))] == "10.00 ± 1.00"
    assert "[n] = runs per cell" in uneven.caption()


def test_latex_escape():
    assert latex_escape("a_b & 5% #1 {x} ~^\\") == (
        r"a\_b \& 5\% \#1 \{x\} \textasciitilde{}\textasciicircum{}\textbackslash{}"
    )


def test_a_table_that_marks_nothing_has_no_best_field_or_mark():
    plain = table(best_means="", cells={key: Cell(cell.stat) for key, cell in table().cells.items()})
    fields = ("threshold", "dataset", "model", "criterion", "init_mode", "measure")
    assert to_csv([plain], fields).splitlines()[0].endswith(",mean,std,n")
    assert "best" not in json.loads(to_json("demo", [plain], fields))["records"][0]
    console = Console(record=True, width=200)
    console.print(*to_rich(plain))
    text = console.export_text()
    assert "*" not in text and "marks" not in text


def long_labels_table() -> Table:
    """set-analysis shaped: (code, combination) rows with long "+"-joined combinations, three models."""
    criteria = ["det", "det_corr", "min_eig", "min_eig_real", "spectral_radius", "spectral_radius_real",
                "spectral_norm", "weight"]
    combinations = ["+".join(criteria), "+".join(criteria[2:7]), "det_corr+weight", ""]
    rows = [("abcdefgh"[: len(c.split("+"))] if c else "∅", c) for c in combinations]
    columns = [("MicroResNet32",), ("MicroResNet56",), ("MicroResNet110",)]
    stats = {(row, column): Stat(0.9912 - 0.3 * i, 0.0001, 3) for i, row in enumerate(rows) for column in columns}
    return Table(
        title="Kernels pruned per combination of criteria, cifar10", keys={}, row_fields=("code", "combination"),
        column_fields=("model",), rows=rows, columns=columns, cells=mark_best(stats, rows, columns, along="column"),
        labels={"code": "Code", "combination": "Criteria", "": "pruned by none"}, best_means="the best",
    )


@pytest.mark.parametrize("width", [40, 80, 120])
def test_long_row_labels_wrap_so_every_number_is_shown_in_full(width):
    wide = long_labels_table()
    console = Console(record=True, width=width)
    console.print(*to_rich(wide, width))
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= width
    for cell_text in wide.cell_texts().values():
        assert cell_text in text
    for name in ("MicroResNet110", "abcdefgh", "by none"):
        assert name in text
    if width >= 80:  # room for whole criterion names: lines break after a "+" only
        assert "spectral_radius_real+" in text and "min_eig_real+" in text


def test_labels_narrow_only_as_far_as_whole_words_allow():
    wide = long_labels_table()
    # at 80 columns the three model columns (17 + 3 wide) and whole names do not fit together: two chunks
    assert [t.title.rsplit("(", 1)[-1] for t in to_rich(wide, 80)] == ["columns 1–2 of 3)", "column 3 of 3)"]
    assert len(to_rich(wide, 120)) == 1
