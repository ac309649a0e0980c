"""Tiny random-weight versions of every model family the model backends load, built without any hub access.

Component shapes follow diffusers' and transformers' own pipeline tests (1 + 1 transformer layers, 32-dim
encoders, one-block VAEs). Tokenizers are built in memory from a byte-level vocabulary with no merges. Each
builder ``save_pretrained``s into a directory so the backends load it through the real ``from_pretrained`` path.
"""

from __future__ import annotations

from pathlib import Path

import torch

CLIP_VOCAB = 1000


def byte_vocab() -> list[str]:
    """The 256 byte-level symbols of GPT-2 style BPE (printable stand-ins for every byte)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return list(bytes_to_unicode().values())


def clip_tokenizer():
    from transformers import CLIPTokenizer

    symbols = byte_vocab()
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def t5_tokenizer():
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -1.0)]
    pieces += [(chr(c), -2.0) for c in range(33, 127)]
    return T5TokenizerFast(vocab=pieces, extra_ids=0)


def clip_text_encoder(projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=1,
                            vocab_size=CLIP_VOCAB, projection_dim=32, max_position_embeddings=77, bos_token_id=512,
                            eos_token_id=513, pad_token_id=513)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def t5_encoder():
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(vocab_size=128, d_model=32, d_ff=37, d_kv=8, num_layers=1, num_heads=4,
                                   decoder_start_token_id=0))


def flux_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
                         latent_channels=2, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
                         shift_factor=0.0609, scaling_factor=1.5035)


def flux_transformer(in_channels: int):
    from diffusers import FluxTransformer2DModel

    return FluxTransformer2DModel(patch_size=1, in_channels=in_channels, out_channels=8, num_layers=1,
                                  num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
                                  joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8])


def flux_components(in_channels: int) -> dict:
    from diffusers import FlowMatchEulerDiscreteScheduler

    return {"transformer": flux_transformer(in_channels), "text_encoder": clip_text_encoder(),
            "text_encoder_2": t5_encoder(), "tokenizer": clip_tokenizer(), "tokenizer_2": t5_tokenizer(),
            "vae": flux_vae(), "scheduler": FlowMatchEulerDiscreteScheduler()}


def build_flux_fill(directory: Path) -> Path:
    """FLUX.1-Fill: transformer input = packed latents (2 x 4) + packed masked-image latents (8) + mask (4)."""
    from diffusers import FluxFillPipeline

    torch.manual_seed(0)
    FluxFillPipeline(**flux_components(in_channels=20)).save_pretrained(directory)
    return directory


def build_flux_kontext(directory: Path) -> Path:
    """FLUX.1-Kontext: the reference image's latents join the sequence, so the input is packed latents only."""
    from diffusers import FluxKontextPipeline

    torch.manual_seed(0)
    FluxKontextPipeline(**flux_components(in_channels=8), image_encoder=None, feature_extractor=None
                        ).save_pretrained(directory)
    return directory


def build_sd_inpaint(directory: Path) -> Path:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=9,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=4, attention_head_dim=4)
    vae = AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, sample_size=32)
    pipe = StableDiffusionInpaintPipeline(vae=vae, text_encoder=clip_text_encoder(), tokenizer=clip_tokenizer(),
                                          unet=unet, scheduler=DDIMScheduler(steps_offset=1), safety_checker=None,
                                          feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(directory)
    return directory


def build_clipseg(directory: Path) -> Path:
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor, ViTImageProcessor

    torch.manual_seed(0)
    text = {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2,
            "vocab_size": CLIP_VOCAB, "max_position_embeddings": 77, "bos_token_id": 512, "eos_token_id": 513,
            "pad_token_id": 513}
    vision = {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2,
              "image_size": 32, "patch_size": 8}
    config = CLIPSegConfig(text_config=text, vision_config=vision, projection_dim=32, reduce_dim=16,
                           extract_layers=[1])
    CLIPSegForImageSegmentation(config).save_pretrained(directory)
    image_processor = ViTImageProcessor(size={"height": 32, "width": 32})
    CLIPSegProcessor(image_processor=image_processor, tokenizer=clip_tokenizer()).save_pretrained(directory)
    return directory


def bert_tokenizer():
    from transformers import BertTokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = [chr(c) for c in range(33, 127)] + ["##" + chr(c) for c in range(97, 123)]
    return BertTokenizer(vocab={w: i for i, w in enumerate(specials + words)})


def build_grounding_dino(directory: Path) -> Path:
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    torch.manual_seed(0)
    backbone = SwinConfig(window_size=7, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], image_size=224,
                          out_features=["stage2", "stage3", "stage4"], out_indices=[2, 3, 4])
    text = {"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8,
            "max_position_embeddings": 64, "vocab_size": 160, "model_type": "bert"}
    config = GroundingDinoConfig(d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2,
                                 decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=4,
                                 num_feature_levels=4, encoder_n_points=2, decoder_n_points=2, max_text_len=64,
                                 backbone_config=backbone, text_config=text)
    GroundingDinoForObjectDetection(config).save_pretrained(directory)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=bert_tokenizer()).save_pretrained(directory)
    return directory


def build_sam(directory: Path) -> Path:
    from transformers import (
        SamConfig,
        SamImageProcessor,
        SamMaskDecoderConfig,
        SamModel,
        SamProcessor,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    torch.manual_seed(0)
    vision = SamVisionConfig(hidden_size=32, output_channels=16, num_hidden_layers=1, num_attention_heads=2,
                             image_size=64, patch_size=8, mlp_dim=32, global_attn_indexes=[0], window_size=4,
                             num_pos_feats=8)
    prompt = SamPromptEncoderConfig(hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4)
    decoder = SamMaskDecoderConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_dim=32,
                                   iou_head_hidden_dim=16)
    SamModel(SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
             ).save_pretrained(directory)
    image_processor = SamImageProcessor(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64})
    SamProcessor(image_processor=image_processor).save_pretrained(directory)
    return directory


def build_segformer(directory: Path) -> Path:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    torch.manual_seed(0)
    config = SegformerConfig(num_encoder_blocks=1, depths=[1], sr_ratios=[1], hidden_sizes=[8], num_attention_heads=[1],
                             patch_sizes=[3], strides=[2], mlp_ratios=[2], decoder_hidden_size=8, num_labels=2,
                             id2label={0: "background", 1: "object"}, label2id={"background": 0, "object": 1})
    SegformerForSemanticSegmentation(config).save_pretrained(directory)
    SegformerImageProcessor(size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory


def build_flux_lora(pipeline_dir: Path, directory: Path, seed: int = 1) -> Path:
    """A random (non-zero) LoRA on the attention projections of a tiny Flux pipeline's transformer."""
    from diffusers import FluxFillPipeline, FluxTransformer2DModel
    from peft import LoraConfig, get_peft_model_state_dict

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel.from_pretrained(pipeline_dir, subfolder="transformer")
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                       target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    FluxFillPipeline.save_lora_weights(directory, transformer_lora_layers=get_peft_model_state_dict(transformer))
    return directory
