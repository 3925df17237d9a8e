// Generated from lora_workbench/training/settings.py by scripts/generate_settings.py; do not edit.
// The KohyaLoRATrain layout and its option nodes, for web/train_migration.js.
export const LAYOUT = {
  "version": 2,
  "layout_property": "lora_workbench_layout",
  "options_type": "LORA_TRAIN_OPTIONS",
  "options_input": "options",
  "main": {
    "type": "KohyaLoRATrain",
    "widgets": [
      "ckpt_name",
      "epochs",
      "width",
      "height",
      "seed",
      "network_dim",
      "network_alpha",
      "learning_rate",
      "unet_lr",
      "text_encoder_lr",
      "noise_offset",
      "sample_sampler",
      "script",
      "output_name",
      "model_type"
    ]
  },
  "legacy_v1_widgets": [
    "ckpt_name",
    "epochs",
    "width",
    "height",
    "seed",
    "network_dim",
    "network_alpha",
    "learning_rate",
    "unet_lr",
    "text_encoder_lr",
    "noise_offset",
    "sample_sampler",
    "script",
    "output_name",
    "model_type",
    "batch_size",
    "save_every_n_epochs",
    "max_train_steps",
    "step_rule",
    "train_text_encoder",
    "optimizer",
    "lr_scheduler",
    "lr_warmup_steps",
    "mixed_precision",
    "save_precision",
    "caption_extension",
    "buckets",
    "min_bucket_reso",
    "max_bucket_reso",
    "sample_prompts",
    "sample_every_n_epochs",
    "sample_steps",
    "gradient_checkpointing",
    "cache_latents",
    "cache_latents_to_disk",
    "lowram",
    "attention",
    "v_parameterization",
    "data_loader_workers",
    "device",
    "launcher",
    "cpu_threads",
    "num_processes",
    "gpu_ids",
    "num_machines",
    "machine_rank",
    "main_process_ip",
    "main_process_port",
    "tokenizer_cache_dir",
    "show_samples",
    "link_to_library"
  ],
  "control_values": [
    "fixed",
    "increment",
    "decrement",
    "randomize"
  ],
  "option_nodes": [
    {
      "type": "KohyaNetworkOptions",
      "group": "network",
      "widgets": [
        "train_text_encoder",
        "v_parameterization"
      ]
    },
    {
      "type": "KohyaOptimizerOptions",
      "group": "optimizer",
      "widgets": [
        "optimizer",
        "lr_scheduler",
        "lr_warmup_steps",
        "batch_size",
        "max_train_steps",
        "step_rule"
      ]
    },
    {
      "type": "KohyaCaptionOptions",
      "group": "captions",
      "widgets": [
        "caption_extension",
        "buckets",
        "min_bucket_reso",
        "max_bucket_reso"
      ]
    },
    {
      "type": "KohyaSamplingOptions",
      "group": "sampling",
      "widgets": [
        "sample_prompts",
        "sample_every_n_epochs",
        "sample_steps",
        "show_samples"
      ]
    },
    {
      "type": "KohyaSavingOptions",
      "group": "saving",
      "widgets": [
        "save_every_n_epochs",
        "save_precision",
        "link_to_library"
      ]
    },
    {
      "type": "KohyaPrecisionOptions",
      "group": "precision",
      "widgets": [
        "mixed_precision",
        "gradient_checkpointing",
        "cache_latents",
        "cache_latents_to_disk",
        "lowram",
        "attention",
        "data_loader_workers"
      ]
    },
    {
      "type": "KohyaLaunchOptions",
      "group": "launch",
      "widgets": [
        "device",
        "launcher",
        "cpu_threads",
        "num_processes",
        "gpu_ids",
        "num_machines",
        "machine_rank",
        "main_process_ip",
        "main_process_port",
        "tokenizer_cache_dir"
      ]
    }
  ],
  "defaults": {
    "epochs": 3,
    "width": 512,
    "height": 512,
    "seed": 12345,
    "network_dim": 128,
    "network_alpha": 128.0,
    "learning_rate": 0.0001,
    "unet_lr": 0.0001,
    "text_encoder_lr": 5e-05,
    "noise_offset": 0.0,
    "sample_sampler": "dpm_2",
    "script": "auto",
    "output_name": "",
    "model_type": "auto",
    "train_text_encoder": true,
    "v_parameterization": false,
    "optimizer": "AdamW",
    "lr_scheduler": "cosine_with_restarts",
    "lr_warmup_steps": 0,
    "batch_size": 0,
    "max_train_steps": 0,
    "step_rule": "seed",
    "caption_extension": "",
    "buckets": "dataset",
    "min_bucket_reso": 256,
    "max_bucket_reso": 1024,
    "sample_prompts": "",
    "sample_every_n_epochs": 1,
    "sample_steps": 20,
    "show_samples": false,
    "save_every_n_epochs": 1,
    "save_precision": "fp16",
    "link_to_library": false,
    "mixed_precision": "auto",
    "gradient_checkpointing": true,
    "cache_latents": true,
    "cache_latents_to_disk": true,
    "lowram": false,
    "attention": "sdpa",
    "data_loader_workers": 0,
    "device": "auto",
    "launcher": "accelerate",
    "cpu_threads": 2,
    "num_processes": 1,
    "gpu_ids": "",
    "num_machines": 1,
    "machine_rank": 0,
    "main_process_ip": "",
    "main_process_port": 0,
    "tokenizer_cache_dir": ""
  },
  "trainer_height": 900
};
