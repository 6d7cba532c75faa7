# As unet_convnext-s_4xb2-20k_handbone-512x512.py at twice the resolution: 1024x1024
# crops of images resized to 1024 (2048x2048 originals), whole-image inference at 1024.
# Thin structures (finger tips) keep twice the pixels; about 4x the memory and time.
_base_ = ['./unet_convnext-s_4xb2-20k_handbone-512x512.py']

crop_size = (1024, 1024)
model = dict(data_preprocessor=dict(size=crop_size))
# the 512 config's pipeline at 1024 px
train_pipeline = _base_.train_pipeline
train_pipeline[2].scale = train_pipeline[4].crop_size = train_pipeline[-2].size = crop_size
test_pipeline = _base_.test_pipeline
test_pipeline[1].scale = crop_size
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
