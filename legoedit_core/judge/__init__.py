"""The judge: a VLM scoring edits against the ImageEdit-R1 and VIEScore rubrics (``vlm``, ``scores``), model-free
metrics (``metrics``), and both applied to a run's edits (``judgement``)."""
