"""The application: the `animate` command and its jobs (infer, pose, upscale, eval, download), built on the library."""
