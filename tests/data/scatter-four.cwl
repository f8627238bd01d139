# Written for the template's tests: one tool scattered over four values, each run sleeping a
# little, with no ResourceRequirement (so Calrissian gets --max-cores from DEFAULT_MAX_CORES, 2,
# and each step pod the default request of one core).
cwlVersion: v1.2
$namespaces:
  s: https://schema.org/
s:softwareVersion: 0.1.0
$graph:
  - class: Workflow
    id: scatter-four
    label: Scatter of four
    doc: Writes one note per word, four tool runs in all.
    requirements:
      ScatterFeatureRequirement: {}
    inputs:
      words: {type: "string[]", label: Words, doc: One tool run per word}
    outputs:
      notes:
        type: File[]
        outputSource: note/note
    steps:
      note:
        run: "#note"
        in: {word: words}
        scatter: word
        out: [note]
  - class: CommandLineTool
    id: note
    requirements:
      DockerRequirement:
        dockerPull: docker.io/library/busybox:1.36.1
    baseCommand: [sh, -c, 'sleep 1 && echo "$0" > note.txt']
    inputs:
      word: {type: string, inputBinding: {position: 1}}
    outputs:
      note: {type: File, outputBinding: {glob: note.txt}}
