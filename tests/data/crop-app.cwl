# A small Application Package written for the template's tests: one Workflow, one tool.
cwlVersion: v1.2
$namespaces:
  s: https://schema.org/
s:softwareVersion: 1.0.0
s:name: crop-app
$graph:
  - class: Workflow
    id: crop-app
    label: Crop a product
    doc: Crops the bands of a staged EO product to an area of interest.
    requirements:
      ScatterFeatureRequirement: {}
    inputs:
      product:
        type: Directory
        label: EO product
        doc: A folder holding a STAC catalog of the product
      aoi:
        type: string
        label: Area of interest
        doc: Bounding box as minx,miny,maxx,maxy
      bands:
        type: string[]
        label: Bands
        doc: Bands to crop
        default: [red, nir]
      note:
        type: string?
        label: Note
        doc: Free text kept with the result
    outputs:
      results:
        type: Directory[]
        outputSource: crop/cropped
    steps:
      crop:
        run: "#crop-tool"
        in:
          product: product
          aoi: aoi
          band: bands
        scatter: band
        scatterMethod: dotproduct
        out: [cropped]
  - class: CommandLineTool
    id: crop-tool
    requirements:
      DockerRequirement:
        dockerPull: docker.io/library/python:3.12-slim
    baseCommand: [python3, -c, "import os, sys; os.makedirs(sys.argv[3], exist_ok=True)"]
    inputs:
      product:
        type: Directory
        inputBinding: {position: 1}
      aoi:
        type: string
        inputBinding: {position: 2}
      band:
        type: string
        inputBinding: {position: 3}
    outputs:
      cropped:
        type: Directory
        outputBinding: {glob: $(inputs.band)}
