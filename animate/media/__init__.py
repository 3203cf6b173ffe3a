"""Media: reading and writing images and videos, and Real-ESRGAN super-resolution; no diffusion model is imported here."""
