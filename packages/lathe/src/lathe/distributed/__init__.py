"""Running on several processes: the launcher re-exec, rank-0 discipline, engine arguments.

lathe never schedules processes itself (DESIGN §7): ``lathe train --launcher torchrun`` runs
lathe again under the launcher; the engines are accelerate's (DDP, FSDP, N-D parallelism).
"""
