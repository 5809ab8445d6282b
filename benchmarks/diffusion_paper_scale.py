"""The `paper` diffusion preset at full size on one GPU: seconds per step, peak memory, generation time.

    python benchmarks/diffusion_paper_scale.py --data OUT [--pretrained SD21_UNCLIP] [--batch-size 8] [--steps 12]

Without --pretrained it builds a randomly initialised folder shaped like SD 2.1-unCLIP (UNet 865 M
with a 2048-d projection class embedding, the SD VAE, a CLIP ViT-H/14 image encoder, an
OpenCLIP-H-sized text encoder with a byte-level tokenizer): the timings do not depend on the
weights. Trains `--steps` steps of the paper preset (512², 6 views, sparse attention, fp16,
gradient checkpointing) on --data, then generates 6 views with DDIM 50 and guidance 3. The step
time is measured from step 3 to the step before the last (which also validates).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from facelift_models.mv_pipeline import MultiViewPipeline  # noqa: E402
from presets import override  # noqa: E402
from training.presets import DIFFUSION_PRESETS  # noqa: E402
from training.train_diffusion import train_diffusion  # noqa: E402


def byte_level_clip_tokenizer(max_length: int = 77):
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {t: i for i, t in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def random_unclip_folder(root: str) -> None:
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import (
        CLIPImageProcessor,
        CLIPTextConfig,
        CLIPTextModel,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):  # random init on the GPU: seconds, not minutes
        UNet2DConditionModel(
            sample_size=96,
            in_channels=4,
            out_channels=4,
            attention_head_dim=(5, 10, 20, 20),
            cross_attention_dim=1024,
            use_linear_projection=True,
            class_embed_type="projection",
            projection_class_embeddings_input_dim=2048,
        ).save_pretrained(f"{root}/unet")
        AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2,
            latent_channels=4,
            sample_size=768,
        ).save_pretrained(f"{root}/vae")
        CLIPVisionModelWithProjection(
            CLIPVisionConfig(
                hidden_size=1280,
                intermediate_size=5120,
                num_hidden_layers=32,
                num_attention_heads=16,
                image_size=224,
                patch_size=14,
                projection_dim=1024,
            )
        ).save_pretrained(f"{root}/image_encoder")
        tok = byte_level_clip_tokenizer()
        tok.save_pretrained(f"{root}/tokenizer")
        CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tok),
                hidden_size=1024,
                intermediate_size=4096,
                num_hidden_layers=23,
                num_attention_heads=16,
                max_position_embeddings=77,
                projection_dim=1024,
                bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id,
            )
        ).save_pretrained(f"{root}/text_encoder")
    DDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, prediction_type="v_prediction"
    ).save_pretrained(f"{root}/scheduler")
    CLIPImageProcessor().save_pretrained(f"{root}/feature_extractor")
    with open(f"{root}/model_index.json", "w") as f:
        json.dump({"_class_name": "StableUnCLIPImg2ImgPipeline"}, f)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a datagen output folder (any preset: views are resized to 512²)")
    ap.add_argument("--pretrained", help="a real SD 2.1-unCLIP-style folder; default: a random one of that shape")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--attention", default="sparse")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("note: no CUDA here; the paper preset at 512² on the CPU is very slow", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        pretrained = args.pretrained
        if not pretrained:
            t = time.perf_counter()
            pretrained = os.path.join(tmp, "sd21unclip_random")
            random_unclip_folder(pretrained)
            print(f"built a random SD 2.1-unCLIP-shaped folder in {time.perf_counter() - t:.0f} s", flush=True)
        marks = []

        def callback(step, loss, run):
            sync()
            marks.append((time.perf_counter(), step))

        paper = DIFFUSION_PRESETS["paper"]
        cfg = override(
            paper.config,
            dict(
                steps=args.steps,
                batch_size=args.batch_size,
                grad_accum=1,
                checkpoint_every=10**9,
                validate_every=10**9,
            ),
        )
        model_cfg = override(paper.model, dict(pretrained=pretrained, attention=args.attention))
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        result = train_diffusion(
            cfg, args.data, os.path.join(tmp, "run"), model_cfg, progress=False, callback=callback
        )
        (t3, s3), (tn, sn) = marks[min(3, len(marks) - 3)], marks[-2]  # the last step also runs the validation grid
        peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
        pipe = MultiViewPipeline.from_pretrained(
            result["pipeline"],
            trust_remote_code=True,
            torch_dtype=torch.float16 if torch.cuda.is_available() else torch.float32,
        )
        pipe = pipe.to("cuda") if torch.cuda.is_available() else pipe
        pipe.set_progress_bar_config(disable=True)
        pipe(torch.rand(3, 512, 512), num_inference_steps=2)  # warm-up
        sync()
        t = time.perf_counter()
        pipe(torch.rand(3, 512, 512), num_inference_steps=50, guidance_scale=3.0)
        sync()
        gen = time.perf_counter() - t
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(
        f"{name}: paper preset, batch {args.batch_size} subjects × 6 views at 512², {args.attention} attention, fp16: "
        f"{(tn - t3) / (sn - s3):.2f} s/step, peak {peak:.1f} GiB; 6 views with DDIM 50 + CFG 3 in fp16: {gen:.2f} s"
    )


if __name__ == "__main__":
    main()
