# The example Application Package of the template: per-band statistics of a staged STAC item,
# published as a STAC catalog. Two steps, one scattered; plain Python, so it runs anywhere.
cwlVersion: v1.2
$namespaces:
  s: https://schema.org/
s:softwareVersion: 1.0.0
s:name: band-stats
s:description: Band statistics of a STAC item, as a STAC catalog
s:license: Apache-2.0
$graph:
  - class: Workflow
    id: band-stats
    label: Band statistics
    doc: Measures the bands of a STAC item and publishes the statistics as a STAC catalog.
    requirements:
      ScatterFeatureRequirement: {}
    inputs:
      item:
        type: Directory
        label: STAC item
        doc: A STAC catalog holding the item to measure (staged in from its URL)
      bands:
        type: string[]
        label: Bands
        doc: Asset keys of the bands to measure
        default: [red, nir]
    outputs:
      results:
        type: Directory
        label: Statistics
        doc: A STAC catalog with one item whose assets are the statistics of each band
        outputSource: publish/catalog
    steps:
      measure:
        run: "#measure"
        in:
          item: item
          band: bands
        scatter: band
        scatterMethod: dotproduct
        out: [statistics]
      publish:
        run: "#publish"
        in:
          item: item
          statistics: measure/statistics
        out: [catalog]

  - class: CommandLineTool
    id: measure
    label: Measure one band
    doc: Writes the count, minimum, maximum and mean of one band as <band>.json
    requirements:
      DockerRequirement:
        dockerPull: docker.io/library/python:3.12-slim
      ResourceRequirement:
        coresMax: 1
        ramMax: 256
      InitialWorkDirRequirement:
        listing:
          - entryname: measure.py
            entry: |
              import json
              import sys
              from pathlib import Path

              folder, band = Path(sys.argv[1]), sys.argv[2]
              catalog = json.loads((folder / "catalog.json").read_text())
              items = [link["href"] for link in catalog["links"] if link["rel"] == "item"]
              if not items:
                  sys.exit("the staged catalog holds no item")
              item_path = folder / items[0]
              item = json.loads(item_path.read_text())
              if band not in item["assets"]:
                  known = ", ".join(item["assets"])
                  sys.exit(f"band {band!r} is not an asset of item {item['id']} ({known})")
              asset = item_path.parent / item["assets"][band]["href"]
              values = [float(value) for value in asset.read_text().split()]
              stats = {
                  "band": band,
                  "item": item["id"],
                  "count": len(values),
                  "min": min(values),
                  "max": max(values),
                  "mean": round(sum(values) / len(values), 3),
              }
              Path(band + ".json").write_text(json.dumps(stats, indent=2))
              print(f"{band}: mean {stats['mean']} over {len(values)} values", file=sys.stderr)
    baseCommand: [python3, measure.py]
    inputs:
      item:
        type: Directory
        inputBinding: {position: 1}
      band:
        type: string
        inputBinding: {position: 2}
    outputs:
      statistics:
        type: File
        outputBinding:
          glob: $(inputs.band).json

  - class: CommandLineTool
    id: publish
    label: Publish the statistics
    doc: Writes a STAC catalog whose item carries one statistics asset per band
    requirements:
      DockerRequirement:
        dockerPull: docker.io/library/python:3.12-slim
      InitialWorkDirRequirement:
        listing:
          - entryname: publish.py
            entry: |
              import json
              import shutil
              import sys
              from pathlib import Path

              folder, statistics = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
              catalog = json.loads((folder / "catalog.json").read_text())
              source_href = next(l["href"] for l in catalog["links"] if l["rel"] == "item")
              source = json.loads((folder / source_href).read_text())
              item_id = source["id"] + "-band-stats"
              out = Path("results")
              (out / item_id).mkdir(parents=True)
              assets = {}
              for path in statistics:
                  shutil.copy(path, out / item_id / path.name)
                  band = json.loads(path.read_text())["band"]
                  assets[band] = {"href": "./" + path.name, "type": "application/json",
                                  "roles": ["data"], "title": band + " statistics"}
              item = {
                  "type": "Feature",
                  "stac_version": "1.0.0",
                  "id": item_id,
                  "geometry": source.get("geometry"),
                  "bbox": source.get("bbox"),
                  "properties": {"datetime": source["properties"].get("datetime")},
                  "links": [{"rel": "root", "href": "../catalog.json"},
                            {"rel": "parent", "href": "../catalog.json"}],
                  "assets": assets,
              }
              (out / item_id / (item_id + ".json")).write_text(json.dumps(item, indent=2))
              result = {
                  "type": "Catalog",
                  "stac_version": "1.0.0",
                  "id": "band-stats",
                  "description": "Band statistics of " + source["id"],
                  "links": [{"rel": "root", "href": "./catalog.json"},
                            {"rel": "item", "href": "./" + item_id + "/" + item_id + ".json"}],
              }
              (out / "catalog.json").write_text(json.dumps(result, indent=2))
              print("published " + str(len(assets)) + " band statistics", file=sys.stderr)
    baseCommand: [python3, publish.py]
    inputs:
      item:
        type: Directory
        inputBinding: {position: 1}
      statistics:
        type: File[]
        inputBinding: {position: 2}
    outputs:
      catalog:
        type: Directory
        outputBinding:
          glob: results
