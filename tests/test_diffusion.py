"""Multi-view diffusion: cross-view attention, conditioning surgery, the v/min-SNR loss, the
pipeline's save/load, and `facelift train diffusion` on real test shards."""

import io
import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import facelift, train_args, write_card_listing
from facelift_models.mv_attention import MultiViewAttnProcessor, set_multiview_attention
from facelift_models.mv_conditioning import class_vector
from facelift_models.mv_diffusion import (
    NUM_VIEWS,
    MultiViewDenoiser,
    add_class_embedding,
    build_components,
    expand_conv_in,
    training_scheduler,
)
from facelift_models.mv_pipeline import MultiViewPipeline
from presets import override
from training.diffusion_loss import guidance_keep_masks, min_snr_v_weight, snr
from training.diffusion_pipeline import make_pipeline
from training.presets import DIFFUSION_PRESETS, DiffusionTrainConfig

TINY = DIFFUSION_PRESETS["tiny"].model


def first_self_attention(unet):
    return unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1


def run_attn(attn, mode: str, x: torch.Tensor) -> torch.Tensor:
    attn.set_processor(MultiViewAttnProcessor(NUM_VIEWS, mode))
    with torch.no_grad():
        return attn(x)


def test_attention_crosses_views_in_multiview_mode_and_not_per_view():
    torch.manual_seed(0)
    unet = build_components(TINY).unet
    attn = first_self_attention(unet)
    b, n, c = 2, 16, attn.to_q.in_features
    x = torch.randn(b * NUM_VIEWS, n, c)
    poked = x.clone()
    poked[2] += torch.randn(n, c)  # subject 0, view 2

    def changed(mode):  # per image: did the output move?
        d = (run_attn(attn, mode, poked) - run_attn(attn, mode, x)).abs().amax(dim=(1, 2))
        return (d > 1e-6).tolist()

    assert changed("dense") == [True] * NUM_VIEWS + [False] * NUM_VIEWS  # every view of subject 0, none of subject 1
    assert changed("per_view") == [i == 2 for i in range(2 * NUM_VIEWS)]
    assert changed("sparse") == [i == 2 for i in range(2 * NUM_VIEWS)]  # view 2 is not the front view
    poked_front = x.clone()
    poked_front[0] += 1.0
    d = (run_attn(attn, "sparse", poked_front) - run_attn(attn, "sparse", x)).abs().amax(dim=(1, 2))
    assert ((d > 1e-6).tolist()) == [True] * NUM_VIEWS + [False] * NUM_VIEWS  # every view sees the front view


def test_dense_attention_is_one_attention_over_all_views_tokens():
    torch.manual_seed(1)
    attn = first_self_attention(build_components(TINY).unet)
    n, c = 8, attn.to_q.in_features
    x = torch.randn(NUM_VIEWS, n, c)
    got = run_attn(attn, "dense", x)
    seq = x.reshape(1, NUM_VIEWS * n, c)
    q, k, v = (
        f(seq).view(1, -1, attn.heads, c // attn.heads).transpose(1, 2) for f in (attn.to_q, attn.to_k, attn.to_v)
    )
    want = attn.to_out[0](F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(1, -1, c)).view(
        NUM_VIEWS, n, c
    )
    torch.testing.assert_close(got, want)
    # Sparse: the front view attends to [itself ; itself], which is plain attention over itself.
    torch.testing.assert_close(run_attn(attn, "sparse", x)[0], run_attn(attn, "per_view", x)[0])


def test_multiview_processor_is_set_on_self_attention_only_and_checks_the_batch():
    unet = build_components(TINY).unet
    changed = set_multiview_attention(unet, NUM_VIEWS, "dense")
    procs = unet.attn_processors
    assert changed == sum(k.endswith("attn1.processor") for k in procs) > 0
    assert all(isinstance(p, MultiViewAttnProcessor) == k.endswith("attn1.processor") for k, p in procs.items())
    with pytest.raises(ValueError, match="batch of 5 images, not a multiple of 6"):
        run_attn(first_self_attention(unet), "dense", torch.randn(5, 4, first_self_attention(unet).to_q.in_features))
    with pytest.raises(ValueError, match="'global' is not one of dense, sparse, per_view"):
        override(TINY, {"attention": "global"})


def test_min_snr_weight_is_the_eps_form_weight_moved_onto_the_v_target():
    sched = training_scheduler()
    t = torch.tensor([0, 50, 300, 999])
    z, eps, v_hat = torch.randn(3, 4, 4, 4, 4).unbind(0)
    a = sched.alphas_cumprod[t].sqrt().view(-1, 1, 1, 1)
    s = (1 - sched.alphas_cumprod[t]).sqrt().view(-1, 1, 1, 1)
    x_t = a * z + s * eps
    v = sched.get_velocity(z, eps, t)
    eps_hat = s * x_t + a * v_hat  # ε implied by a v prediction
    gamma = 5.0
    eps_form = torch.clamp(snr(sched, t), max=gamma) / snr(sched, t) * ((eps - eps_hat) ** 2).mean(dim=(1, 2, 3))
    v_form = min_snr_v_weight(sched, t, gamma) * ((v - v_hat) ** 2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(v_form, eps_form, rtol=1e-4, atol=1e-6)
    assert sched.config.prediction_type == "v_prediction"


def test_cfg_dropout_drops_embedding_both_and_latent_each_at_its_rate():
    keep_embed, keep_latent = guidance_keep_masks(200_000, 0.05, torch.Generator().manual_seed(0))
    only_embed = (~keep_embed & keep_latent).float().mean()
    both = (~keep_embed & ~keep_latent).float().mean()
    only_latent = (keep_embed & ~keep_latent).float().mean()
    for rate in (only_embed, both, only_latent):
        assert abs(float(rate) - 0.05) < 0.003


def _small_sd_unet(**config):
    """A randomly initialised UNet2DConditionModel shaped like Stable Diffusion's (4 latent channels,
    cross-attention blocks), small enough for a test; `config` adds to its settings."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=16,
        attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D",) * 2,
        up_block_types=("CrossAttnUpBlock2D",) * 2,
        **config,
    )


def test_conv_in_expansion_and_new_class_embedding_keep_a_pretrained_unet_unchanged():
    torch.manual_seed(2)
    unet = _small_sd_unet()
    x, t, ctx = torch.randn(2, 4, 8, 8), torch.tensor([10, 700]), torch.randn(2, 3, 16)
    with torch.no_grad():
        before = unet(x, t, ctx).sample
        expand_conv_in(unet, 8)
        add_class_embedding(unet, 24)
        after = unet(torch.cat([x, torch.randn(2, 4, 8, 8)], dim=1), t, ctx, class_labels=torch.randn(2, 24)).sample
    assert unet.config.in_channels == 8 and unet.conv_in.weight[:, 4:].abs().max() == 0
    assert unet.config.class_embed_type == "projection" and unet.config.projection_class_embeddings_input_dim == 24
    torch.testing.assert_close(after, before)


def test_unclip_class_vector_appends_the_noise_level_zero_embedding():
    e = torch.randn(3, 8)
    torch.testing.assert_close(class_vector(e, 8), e)
    cv = class_vector(e, 16)
    torch.testing.assert_close(cv[:, :8], e)
    torch.testing.assert_close(cv[:, 8:], torch.tensor([1.0] * 4 + [0.0] * 4).expand(3, 8))  # cos(0), sin(0)
    with pytest.raises(ValueError, match="takes 10 values; the image encoder gives 8"):
        class_vector(e, 10)


def _tiny_pipeline(**cfg_overrides):
    torch.manual_seed(3)
    cfg = override(TINY, cfg_overrides)
    c = build_components(cfg)
    return make_pipeline(MultiViewDenoiser(c, cfg), c.vae, c.noise_scheduler, cfg)


def test_pipeline_makes_six_views_and_round_trips_through_save_pretrained(tmp_path):
    pipe = _tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    image = torch.rand(3, 64, 64)
    a = pipe(image, num_inference_steps=4, seed=7, output_type="pt").images
    assert a.shape == (NUM_VIEWS, 3, 32, 32) and 0 <= a.min() and a.max() <= 1
    b = pipe(image, num_inference_steps=4, seed=7, output_type="pt").images
    torch.testing.assert_close(a, b)  # a seed fixes the result
    # A batch gives each image what it gets alone.
    batch = pipe([torch.rand(3, 64, 64), image], num_inference_steps=4, seed=7, output_type="pt").images
    assert batch.shape == (2, NUM_VIEWS, 3, 32, 32)
    torch.testing.assert_close(batch[1], a, atol=1e-4, rtol=0)
    pipe.save_pretrained(tmp_path / "p")
    index = json.loads((tmp_path / "p" / "model_index.json").read_text())
    assert (
        index["_class_name"] == ["mv_pipeline", "MultiViewPipeline"]
        and index["num_views"] == 6
        and index["attention"] == "dense"
    )
    loaded = MultiViewPipeline.from_pretrained(tmp_path / "p", trust_remote_code=True)
    loaded.set_progress_bar_config(disable=True)
    assert (
        type(loaded.image_encoder).__name__ == "SmallImageEncoder"
        and type(loaded.view_embeddings).__name__ == "ViewEmbeddings"
    )
    assert any(type(p).__name__ == "MultiViewAttnProcessor" for p in loaded.unet.attn_processors.values())
    torch.testing.assert_close(loaded(image, num_inference_steps=4, seed=7, output_type="pt").images, a)
    pil = loaded(np.full((40, 40, 3), 128, np.uint8), num_inference_steps=2).images
    assert len(pil) == NUM_VIEWS and pil[0].size == (32, 32)


def test_a_saved_pipeline_opens_with_diffusers_own_entry_point_without_facelift(tmp_path):
    pipe = _tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    image = torch.rand(3, 64, 64)
    pipe.save_pretrained(tmp_path / "p")
    torch.save(image, tmp_path / "image.pt")
    want = pipe(image, num_inference_steps=3, seed=4, output_type="pt").images
    # A fresh interpreter where facelift cannot be imported: diffusers and the folder only.
    script = (
        "import sys, torch\n"
        "sys.modules['facelift_models'] = None\n"
        "from diffusers import DiffusionPipeline\n"
        f"pipe = DiffusionPipeline.from_pretrained({str(tmp_path / 'p')!r}, trust_remote_code=True)\n"
        "pipe.set_progress_bar_config(disable=True)\n"
        f"image = torch.load({str(tmp_path / 'image.pt')!r})\n"
        "torch.save(pipe(image, num_inference_steps=3, seed=4, output_type='pt').images, "
        f"{str(tmp_path / 'views.pt')!r})\n"
    )
    r = subprocess.run(
        [sys.executable, "-I", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules")},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    torch.testing.assert_close(torch.load(tmp_path / "views.pt"), want)


def test_without_input_reconstruction_the_pipeline_hands_the_input_back_as_view_0():
    pipe = _tiny_pipeline(reconstruct_input=False)
    pipe.set_progress_bar_config(disable=True)
    image = torch.rand(3, 32, 32)
    views = pipe(image, num_inference_steps=2, output_type="pt").images
    torch.testing.assert_close(views[0], image, atol=1e-6, rtol=0)
    assert (views[1] - image).abs().mean() > 0.05


# ----------------------------------------------------------------------------- a pretrained folder


def _clip_tokenizer():
    """A real CLIPTokenizer over a byte-level vocabulary with no merges (no download needed)."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {t: i for i, t in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=64)


def _unclip_style_folder(root):
    """A tiny SD 2.1-unCLIP-shaped diffusers folder: 4-channel UNet with a 2·E projection class
    embedding, VAE, scheduler, CLIP image encoder + feature extractor, CLIP text encoder + tokenizer."""
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import (
        CLIPImageProcessor,
        CLIPTextConfig,
        CLIPTextModel,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    torch.manual_seed(4)
    _small_sd_unet(class_embed_type="projection", projection_class_embeddings_input_dim=32).save_pretrained(
        root / "unet"
    )
    AutoencoderKL(
        block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
    ).save_pretrained(root / "vae")
    DDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, prediction_type="epsilon"
    ).save_pretrained(root / "scheduler")
    CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
            projection_dim=16,
        )
    ).save_pretrained(root / "image_encoder")
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        root / "feature_extractor"
    )
    tok = _clip_tokenizer()
    tok.save_pretrained(root / "tokenizer")
    CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tok),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=64,
            projection_dim=16,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    ).save_pretrained(root / "text_encoder")
    (root / "model_index.json").write_text(json.dumps({"_class_name": "StableUnCLIPImg2ImgPipeline"}))
    return root


def test_an_unclip_style_checkpoint_gets_facelifts_surgery(tmp_path):
    from training.diffusion_loss import diffusion_loss

    folder = _unclip_style_folder(tmp_path / "sd21unclip")
    cfg = override(
        DIFFUSION_PRESETS["paper"].model, dict(pretrained=str(folder), image_size=32, gradient_checkpointing=False)
    )
    c = build_components(cfg)
    assert c.unet.config.in_channels == 8 and c.unet.conv_in.weight[:, 4:].abs().max() == 0
    assert c.noise_scheduler.config.prediction_type == "v_prediction" and c.frozen_conditioning
    assert c.view_embeddings.embeddings.shape == (NUM_VIEWS, 64, 16)  # 6 prompts × 64 tokens × text width
    assert not torch.allclose(
        c.view_embeddings.embeddings[1], c.view_embeddings.embeddings[3]
    )  # front_right ≠ back prompt
    den = MultiViewDenoiser(c, cfg)
    assert set(den.trainable_modules()) == {"unet"} and not any(
        p.requires_grad for p in den.image_encoder.parameters()
    )
    batch = {"views": torch.rand(2, NUM_VIEWS, 3, 32, 32)}
    loss = diffusion_loss(den, c.vae, c.noise_scheduler, batch, DIFFUSION_PRESETS["tiny"].config, True, torch.float32)
    loss.backward()
    assert (
        torch.isfinite(loss) and den.unet.conv_in.weight.grad[:, 4:].abs().sum() > 0
    )  # the input latent gets gradient
    pipe = make_pipeline(den, c.vae, c.noise_scheduler, cfg)
    pipe.set_progress_bar_config(disable=True)
    assert pipe(torch.rand(3, 32, 32), num_inference_steps=2, output_type="pt").images.shape == (NUM_VIEWS, 3, 32, 32)
    assert isinstance(DIFFUSION_PRESETS["paper"].config, DiffusionTrainConfig)


# ----------------------------------------------------------------------------- the CLI on real shards


def _fewer_fixed_views(dataset_a, folder, keep=4):
    """A facelift card and shard whose subject has only `keep` fixed views."""
    src = sorted((dataset_a / "shards").glob("*.tar"))[0]
    (folder / "shards").mkdir(parents=True)
    buf = io.BytesIO()
    with tarfile.open(src) as tin, tarfile.open(fileobj=buf, mode="w") as tout:
        first = None
        for info in tin:
            key, _, member = info.name.partition(".")
            first = first or key
            if key == first and (member == "cameras.json" or member in [f"fixed_{k:02d}.png" for k in range(keep)]):
                tout.addfile(info, tin.extractfile(info))
    (folder / "shards" / "heads-000000.tar").write_bytes(buf.getvalue())
    write_card_listing(folder, dataset_a)


def test_train_diffusion_saves_a_pipeline_that_turns_an_image_into_six_views_and_resumes(dataset_a, tmp_path):
    out = tmp_path / "run"
    every_2 = ("--checkpoint-every", "2", "--validate-every", "2")
    args = train_args(
        "diffusion", dataset_a, out, "--preset", "tiny", "--vae-steps", "5", "--batch-size", "2", *every_2
    )
    r = facelift(*args, "--steps", "4", "--stop-at", "3")
    assert r.returncode == 0, r.stderr
    assert "step 3" in r.stdout
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000002", "step-00000003"]
    assert list((out / "logs").glob("events.out.tfevents.*")) and (out / "vae" / "config.json").exists()
    from PIL import Image

    pipe = MultiViewPipeline.from_pretrained(out / "pipeline", trust_remote_code=True)
    pipe.set_progress_bar_config(disable=True)
    with tarfile.open(sorted((dataset_a / "shards").glob("*.tar"))[0]) as tar:
        png = next(tar.extractfile(i).read() for i in tar if i.name.endswith("fixed_00.png"))
    views = pipe(Image.open(io.BytesIO(png)), num_inference_steps=3, guidance_scale=3.0, seed=0).images
    assert len(views) == 6 and all(v.size == (32, 32) for v in views)
    # Resume continues from step 3 with the same VAE and finishes the 4 steps.
    vae_before = (out / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()
    r = facelift(*args, "--steps", "4", "--resume")
    assert r.returncode == 0, r.stderr
    assert "step 4" in r.stdout
    assert (out / "vae" / "diffusion_pytorch_model.safetensors").read_bytes() == vae_before
    state = torch.load(out / "checkpoints" / "step-00000004" / "training_state.pt", weights_only=True)
    assert state["step"] == 4 and state["ema"]["optimization_step"] == 4


def test_train_diffusion_bad_inputs_are_one_line_errors(dataset_a, tmp_path):
    def fails(*extra, data=dataset_a):
        r = facelift(*train_args("diffusion", data, tmp_path / "r", "--steps", "1", "--vae-steps", "1", *extra))
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        return r.stderr

    not_a_model = tmp_path / "weights"
    not_a_model.mkdir()
    (not_a_model / "model.ckpt").write_bytes(b"\0" * 16)
    assert "is not a diffusers model: it has no unet/config.json" in fails("--pretrained", str(not_a_model))
    assert "is a file; give a diffusers model folder" in fails("--pretrained", str(not_a_model / "model.ckpt"))
    assert "paper preset fine-tunes a pretrained model" in fails("--preset", "paper")
    assert "'global' is not one of dense, sparse, per_view" in fails("--attention", "global")
    # A facelift pipeline made for another view count.
    pipe = _tiny_pipeline()
    pipe.save_pretrained(tmp_path / "four")
    index = json.loads((tmp_path / "four" / "model_index.json").read_text())
    (tmp_path / "four" / "model_index.json").write_text(json.dumps({**index, "num_views": 4}))
    assert "generates 4 views; this model needs 6" in fails("--pretrained", str(tmp_path / "four"))
    # Shards whose subjects lack fixed views.
    few = tmp_path / "few"
    _fewer_fixed_views(dataset_a, few)
    assert "has 4 fixed views; the multi-view model needs 6 (fixed_00..fixed_05)" in fails(data=few)
