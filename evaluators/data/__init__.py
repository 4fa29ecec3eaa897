"""Data for proxy trials: synthetic spatiotemporal tasks, real video folders, and the on-disk cache they share."""
from attnas.evaluators.data.cache import ArrayCache, cached_task_data, default_cache_dir
from attnas.evaluators.data.sprites import SPLITS
from attnas.evaluators.data.synthetic import DEFAULT_TASK, TASKS, SyntheticTask, TaskData, create_task
from attnas.evaluators.data.video_folder import LAYOUTS, FrameSampling, VideoEntry, VideoFolder, decode_clips

__all__ = ["ArrayCache", "cached_task_data", "default_cache_dir", "SPLITS", "DEFAULT_TASK", "TASKS", "SyntheticTask",
           "TaskData", "create_task", "LAYOUTS", "FrameSampling", "VideoEntry", "VideoFolder", "decode_clips"]
