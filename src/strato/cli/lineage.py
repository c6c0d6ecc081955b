"""``strato lineage KIND NAME``: what a dataset, job, run, model version or endpoint came from, and what
came from it, as a tree, JSON or Graphviz DOT."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from strato.cli.common import Home, Token, Url, client
from strato.cli.output import console

EPILOG = """Examples:

  strato lineage job iris-tree                    # inputs, code, runs, models, endpoints
  strato lineage job iris-tree --upstream         # only what the job came from
  strato lineage model_version iris/3 --upstream --depth 2
  strato lineage dataset s3://bucket/train --downstream -o json
  strato lineage job iris-tree -o dot | dot -Tsvg > lineage.svg"""


class LineageOutput(StrEnum):
    table = "table"
    json = "json"
    dot = "dot"


def lineage(
    kind: Annotated[
        str,
        typer.Argument(
            metavar="KIND", help="Node kind: dataset, code, job, tuning_job, run, model_version, endpoint, ..."
        ),
    ],
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="Its name or key (a job's name or uid, a dataset's URI, a model version's model/N)."
        ),
    ],
    upstream: Annotated[bool, typer.Option("--upstream", help="Only what it came from.")] = False,
    downstream: Annotated[bool, typer.Option("--downstream", help="Only what came from it.")] = False,
    depth: Annotated[
        int | None, typer.Option("--depth", min=0, help="Hops to follow (0: the node alone); all when omitted.")
    ] = None,
    home: Home = None,
    url: Url = None,
    token: Token = None,
    output: Annotated[
        LineageOutput, typer.Option("-o", "--output", help="table (a tree), json, or dot (Graphviz).")
    ] = LineageOutput.table,
) -> None:
    """Show the lineage of one node: what it came from (upstream) and what came from it (downstream).

    Without --upstream or --downstream (or with both) both are shown. When a name was recorded more than
    once (a job deleted and created again), the newest node is shown and a note says so; pass its key to
    pick another.
    """
    from strato.lineage import render

    direction = "upstream" if upstream and not downstream else "downstream" if downstream and not upstream else "both"
    with client(home, url, token) as c:
        graph = c.lineage.get(kind, name, direction=direction, depth=depth)
    if output is LineageOutput.json:
        print(render.to_json(graph))
    elif output is LineageOutput.dot:
        print(render.to_dot(graph), end="")
    else:
        console.print(render.to_rich(graph))
