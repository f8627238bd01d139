# Written for the template's wrapping tests: every input shape that gets staged in.
cwlVersion: v1.2
$namespaces:
  s: https://schema.org/
s:softwareVersion: 0.1.0
$graph:
  - class: Workflow
    id: shapes
    label: Input shapes
    doc: Receives a Directory, an optional Directory, a Directory array and a File.
    inputs:
      scene: {type: Directory, label: Scene, doc: A staged STAC catalog}
      extra: {type: Directory?, label: Extra, doc: An optional staged STAC catalog}
      stack: {type: "Directory[]", label: Stack, doc: Several staged STAC catalogs}
      dem: {type: File, label: DEM, doc: A staged file}
      tag: {type: string, label: Tag, doc: A plain string, default: none}
    outputs:
      summary:
        type: Directory
        outputSource: inspect/summary
      note:
        type: File
        outputSource: inspect/note
    steps:
      inspect:
        run: "#inspect"
        in: {scene: scene, extra: extra, stack: stack, dem: dem, tag: tag}
        out: [summary, note]
  - class: CommandLineTool
    id: inspect
    requirements:
      DockerRequirement:
        dockerPull: docker.io/library/python:3.12-slim
      InitialWorkDirRequirement:
        listing:
          - entryname: inspect.py
            entry: |
              import argparse, json
              from pathlib import Path
              parser = argparse.ArgumentParser()
              for name in ("--scene", "--extra", "--dem", "--tag"):
                  parser.add_argument(name)
              parser.add_argument("--stack", nargs="*", default=[])
              args = parser.parse_args()
              seen = {
                  "scene": sorted(p.name for p in Path(args.scene).iterdir()),
                  "extra": sorted(p.name for p in Path(args.extra).iterdir()) if args.extra else None,
                  "stack": [sorted(p.name for p in Path(s).iterdir()) for s in args.stack],
                  "dem": Path(args.dem).read_text().split()[:3],
                  "tag": args.tag,
              }
              Path("summary").mkdir()
              Path("summary/catalog.json").write_text(json.dumps(
                  {"type": "Catalog", "id": "summary", "stac_version": "1.0.0",
                   "description": json.dumps(seen), "links": []}))
              Path("note.txt").write_text(json.dumps(seen))
    baseCommand: [python3, inspect.py]
    inputs:
      scene: {type: Directory, inputBinding: {prefix: --scene}}
      extra: {type: Directory?, inputBinding: {prefix: --extra}}
      stack: {type: "Directory[]", inputBinding: {prefix: --stack}}
      dem: {type: File, inputBinding: {prefix: --dem}}
      tag: {type: string, inputBinding: {prefix: --tag}}
    outputs:
      summary: {type: Directory, outputBinding: {glob: summary}}
      note: {type: File, outputBinding: {glob: note.txt}}
