"""scale/: the library's objective, sampler and trainer on ImageNet latents, on many GPUs."""
