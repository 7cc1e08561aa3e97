# %% [markdown]
# # Multi-head attention
#
# ## Check
#
# ```mermaid
# flowchart LR
#   A[x] --> B[Q, K, V]
# ```

# %%
import torch
x = torch.ones(2, 3)
print(x.shape)

# %%
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(3, 2))
ax.imshow(torch.eye(4))
ax.set_title("check")
plt.show()
