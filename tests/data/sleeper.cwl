# Written for the template's tests: a tool that sleeps, to exercise wall times.
cwlVersion: v1.2
$namespaces:
  s: https://schema.org/
s:softwareVersion: 0.1.0
$graph:
  - class: Workflow
    id: sleeper
    label: Sleeper
    doc: Sleeps for a while, then writes a note.
    inputs:
      seconds: {type: int, label: Seconds, doc: How long to sleep}
    outputs:
      note:
        type: File
        outputSource: sleep/note
    steps:
      sleep:
        run: "#sleep"
        in: {seconds: seconds}
        out: [note]
  - class: CommandLineTool
    id: sleep
    requirements:
      DockerRequirement:
        dockerPull: docker.io/library/busybox:1.36.1
    baseCommand: [sh, -c, 'sleep "$0" && echo done > note.txt']
    inputs:
      seconds: {type: int, inputBinding: {position: 1}}
    outputs:
      note: {type: File, outputBinding: {glob: note.txt}}
